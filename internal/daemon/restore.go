package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/backupfile"
	"github.com/flotilla-org/flotilla/internal/engineapi"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/ids"
	"github.com/flotilla-org/flotilla/manager"
	"github.com/flotilla-org/flotilla/manager/raftnode"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/ca"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// restoreCrashEnv names a point of the restore where the daemon kills
// itself with SIGKILL: only tests set it, to prove a restore cut short
// leaves nothing half-applied.
const restoreCrashEnv = "FLOTILLA_TEST_RESTORE_CRASH_AT"

// stagingDir is where a restore builds the node's swarm directory before
// renaming it into place.
func (p paths) stagingDir() string { return filepath.Join(p.root, "swarm-restore.tmp") }

// SwarmRestore makes this node, which is in no swarm, the only manager of
// the cluster in a backup: every object of the backup comes back, the lost
// managers show as down and can be removed, and nodes join with the old
// tokens. Everything is checked before anything changes, and the swarm
// directory is built aside and renamed into place as the last step, so a
// restore that fails or is killed midway leaves the node in no swarm and
// can simply be run again.
func (b *backend) SwarmRestore(ctx context.Context, req engineapi.RestoreRequest, data []byte) (string, error) {
	d := b.d
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if n := d.current(); n != nil {
		st := n.state()
		return "", errdefs.Unavailable("this node is already in a swarm (node %s of cluster %s): a restore needs a node in no swarm. Run it on a fresh node, or leave first with 'swarm leave --force' (that erases this node's swarm state); nothing was changed", st.NodeID, st.ClusterID)
	}
	// A node with swarm state on disk but none running (e.g. a manager
	// waiting to be unlocked) is in a swarm too: its data must not go.
	if st, err := d.paths.loadState(); err != nil || st != nil {
		if err == nil {
			err = fmt.Errorf("%s holds the state of node %s of cluster %s", d.paths.stateFile(), st.NodeID, st.ClusterID)
		}
		return "", errdefs.Unavailable("this node's data dir belongs to a swarm (%v): a restore needs a node in no swarm; nothing was changed", err)
	}
	h, body, err := backupfile.Decode(data)
	if err != nil {
		return "", errdefs.Invalid("%v; nothing was changed", err)
	}
	store := state.NewStore()
	if err := store.Restore(bytes.NewReader(body)); err != nil {
		return "", errdefs.Invalid("the backup's cluster state is unreadable (%v); nothing was changed", err)
	}
	c := store.Cluster()
	if c == nil || c.ID != h.ClusterID {
		return "", errdefs.Invalid("the backup's state does not hold the cluster %s its header names; nothing was changed", h.ClusterID)
	}
	root, err := ca.ParseRootCA(c.RootCACertPEM, c.RootCAKeyPEM)
	if err != nil {
		return "", errdefs.Invalid("the backup's root CA is unusable (%v); nothing was changed", err)
	}
	listen, advertise, err := resolveAddrs(req.ListenAddr, req.AdvertiseAddr)
	if err != nil {
		return "", err
	}
	if err := checkListen(listen); err != nil {
		return "", err
	}

	nodeID := ids.New()
	keyPEM, csrPEM, err := ca.NewKeyAndCSR(nodeID)
	if err != nil {
		return "", err
	}
	host, _, _ := net.SplitHostPort(advertise)
	expiry := c.Spec.CAConfig.NodeCertExpiry
	if expiry <= 0 {
		expiry = manager.DefaultCertExpiry
	}
	certPEM, err := root.IssueNodeCert(csrPEM, nodeID, ca.RoleManager, c.ID, ipList(host), expiry)
	if err != nil {
		return "", err
	}
	// This node enters the state as a manager at the backup's index, so the
	// snapshot it starts from already knows it (as swarm init's first
	// write does) and a crash right after the restore loses nothing.
	self := &state.Node{Role: swarm.NodeRoleManager, Addr: advertise}
	self.ID = nodeID
	self.Spec = swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: swarm.NodeAvailabilityActive}
	self.Description = d.describe()
	self.Status = swarm.NodeStatus{State: swarm.NodeStateReady, Addr: host}
	self.ManagerStatus = &swarm.ManagerStatus{Addr: advertise, Reachability: swarm.ReachabilityReachable}
	if err := store.Apply(h.Index, state.Batch{Time: time.Now().UTC(), Ops: []state.Op{state.NewOp(state.TableNodes, state.ActionCreate, self, 0)}}); err != nil {
		return "", errdefs.Invalid("add this node to the backup's state: %v; nothing was changed", err)
	}
	var snap bytes.Buffer
	if err := store.WriteSnapshot(&snap); err != nil {
		return "", err
	}

	st := &localState{NodeID: nodeID, ClusterID: c.ID, Role: swarm.NodeRoleManager, ListenAddr: listen, AdvertiseAddr: advertise,
		Managers: []swarm.Peer{{NodeID: nodeID, Addr: advertise}}}
	certs := certFiles{cert: certPEM, key: keyPEM, ca: root.CertPEM}
	dek, kek, err := restoredKeys(c)
	if err != nil {
		return "", errdefs.Invalid("%v; nothing was changed", err)
	}
	if err := d.stageRestore(st, certs, h, snap.Bytes(), dek, kek); err != nil {
		_ = os.RemoveAll(d.paths.stagingDir())
		return "", fmt.Errorf("prepare the restored swarm state: %w; nothing was changed", err)
	}
	crashPoint("before-rename")
	// Leftovers of an init or join that never finished are not a swarm
	// (there is no state.json, or the node would be in it).
	if err := os.RemoveAll(d.paths.swarmDir()); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(d.paths.stagingDir(), "swarm"), d.paths.swarmDir()); err != nil {
		_ = os.RemoveAll(d.paths.stagingDir())
		return "", fmt.Errorf("move the restored swarm state into place: %w; nothing was changed", err)
	}
	syncDir(d.paths.root)
	_ = os.RemoveAll(d.paths.stagingDir())
	crashPoint("after-rename")

	n, err := startClusterNode(d, st, certs, false, dek, kek)
	if err != nil {
		_ = os.RemoveAll(d.paths.swarmDir())
		return "", fmt.Errorf("start the restored manager: %w; the node stays out of any swarm", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := n.manager().WaitLeader(wctx); err != nil {
		n.stop()
		_ = os.RemoveAll(d.paths.swarmDir())
		return "", fmt.Errorf("the restored manager did not elect itself: %w; the node stays out of any swarm", err)
	}
	d.setNode(n, "")
	d.log.Info("swarm restored from a backup", "node", nodeID, "cluster", c.ID, "index", h.Index, "backup_taken", h.Created)
	return nodeID, nil
}

// stageRestore builds the node's whole swarm directory (Raft state seeded
// with the snapshot, certificates, state.json) under the staging dir.
func (d *Daemon) stageRestore(st *localState, certs certFiles, h backupfile.Header, snap []byte, dek, kek *encryption.Key) error {
	if err := os.RemoveAll(d.paths.stagingDir()); err != nil {
		return err
	}
	staging := newPaths(d.paths.stagingDir())
	if err := raftnode.SeedFromSnapshot(staging.raftDir(), dek, st.NodeID, st.AdvertiseAddr, h.Index, h.Term, snap); err != nil {
		return err
	}
	crashPoint("staging")
	if err := staging.saveCerts(certs); err != nil {
		return err
	}
	if err := writeKeyFile(staging.keyFile(), certs.key, dek, kek); err != nil {
		return err
	}
	if err := staging.saveState(st); err != nil {
		return err
	}
	syncDir(staging.swarmDir())
	return nil
}

// syncDir flushes a directory's entries, so a rename in it survives a
// power cut.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

func crashPoint(name string) {
	if os.Getenv(restoreCrashEnv) == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not delivered synchronously
	}
}
