package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/atomicfile"
)

// localState is what a node remembers of its cluster across restarts, in
// DATA_DIR/swarm. Its absence means the node is in no swarm.
type localState struct {
	NodeID        string
	ClusterID     string
	Role          swarm.NodeRole
	ListenAddr    string
	AdvertiseAddr string
	// AdvertiseGuessed: no advertise address was given, so the daemon
	// picks the machine's address again when it changes.
	AdvertiseGuessed bool `json:",omitempty"`
	Managers         []swarm.Peer
	// Discovery is the spec the node joined through (--join); a restart
	// that reaches none of Managers asks it for the managers of now.
	Discovery string `json:",omitempty"`
}

type paths struct {
	root string
	// mu serialises writes of state.json: the session's manager-list
	// updates and init/join/role changes may race.
	mu *sync.Mutex
}

func newPaths(root string) paths { return paths{root: root, mu: &sync.Mutex{}} }

func (p paths) swarmDir() string  { return filepath.Join(p.root, "swarm") }
func (p paths) stateFile() string { return filepath.Join(p.swarmDir(), "state.json") }
func (p paths) certFile() string  { return filepath.Join(p.swarmDir(), "certs", "node.crt") }
func (p paths) keyFile() string   { return filepath.Join(p.swarmDir(), "certs", "node.key") }
func (p paths) caFile() string    { return filepath.Join(p.swarmDir(), "certs", "ca.crt") }
func (p paths) raftDir() string   { return filepath.Join(p.swarmDir(), "raft") }

// loadState returns nil, nil when the node is in no swarm.
func (p paths) loadState() (*localState, error) {
	b, err := os.ReadFile(p.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s localState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v); remove %s to leave the swarm and join again", p.stateFile(), err, p.swarmDir())
	}
	return &s, nil
}

func (p paths) saveState(s *localState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return writeFileAtomic(p.stateFile(), b, 0o600)
}

type certFiles struct{ cert, key, ca []byte }

func (p paths) loadCerts() (certFiles, error) {
	var c certFiles
	var err error
	if c.cert, err = os.ReadFile(p.certFile()); err != nil {
		return c, err
	}
	if c.key, err = os.ReadFile(p.keyFile()); err != nil {
		return c, err
	}
	c.ca, err = os.ReadFile(p.caFile())
	return c, err
}

func (p paths) saveCerts(c certFiles) error {
	for _, f := range []struct {
		path string
		data []byte
	}{{p.caFile(), c.ca}, {p.keyFile(), c.key}, {p.certFile(), c.cert}} {
		if err := writeFileAtomic(f.path, f.data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// leaves either the old or the new content, never half of one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, mode)
}

// nodeIDsFile lists every node identity this data dir has had. It lives
// outside the swarm dir, which leaving deletes: tasks a former identity
// left behind (a leave that could not clean up, a crash mid-leave) are
// found by it and removed.
func (p paths) nodeIDsFile() string { return filepath.Join(p.root, "node-ids.json") }

// noteNodeID records id as an identity of this data dir and returns the
// others it had before.
func (p paths) noteNodeID(id string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	if b, err := os.ReadFile(p.nodeIDsFile()); err == nil {
		_ = json.Unmarshal(b, &ids) // damaged: start the list again
	}
	var former []string
	for _, x := range ids {
		if x != id {
			former = append(former, x)
		}
	}
	if len(former) == len(ids) {
		b, err := json.Marshal(append(ids, id))
		if err != nil {
			return former, err
		}
		if err := writeFileAtomic(p.nodeIDsFile(), b, 0o600); err != nil {
			return former, err
		}
	}
	return former, nil
}
