package daemon

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flotilla-org/flotilla/manager"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// nodeKeys are the keys a running node holds in memory. kek is the unlock
// key node.key is sealed with (nil: node.key is plain).
type nodeKeys struct {
	mu     sync.Mutex
	dek    *encryption.Key
	kek    *encryption.Key
	closed bool // the node stopped: node.key may be gone, never rewrite it
}

// saveKeys writes node.key with the node's current TLS key and dek, sealed
// with kek (plain when nil), and remembers both.
func (n *clusterNode) saveKeys(dek, kek *encryption.Key) error {
	n.keys.mu.Lock()
	defer n.keys.mu.Unlock()
	if n.keys.closed {
		return errors.New("the node stopped")
	}
	if err := writeKeyFile(n.d.paths.keyFile(), n.tls.certs().key, dek, kek); err != nil {
		return err
	}
	n.keys.dek, n.keys.kek = dek, kek
	return nil
}

// ensureDEK returns the DEK of this manager's Raft data, creating it on
// the first start (new manager, or a data dir from before encryption).
// node.key is rewritten every time: a role change may just have replaced
// it with a new key that carries no DEK.
func (n *clusterNode) ensureDEK() (*encryption.Key, error) {
	n.keys.mu.Lock()
	dek, kek := n.keys.dek, n.keys.kek
	n.keys.mu.Unlock()
	if dek == nil {
		k, err := encryption.NewKey()
		if err != nil {
			return nil, err
		}
		dek = &k
	}
	if err := n.saveKeys(dek, kek); err != nil {
		return nil, fmt.Errorf("save the raft data key: %w", err)
	}
	return dek, nil
}

func (n *clusterNode) closeKeys() {
	n.keys.mu.Lock()
	n.keys.closed = true
	n.keys.mu.Unlock()
}

// syncKeys seals node.key with the swarm's current unlock key, or writes it
// plain when autolock is off. Only the small key file changes: the Raft
// data stays sealed with the same DEK.
func (n *clusterNode) syncKeys(m *manager.Manager) error {
	c := m.Store().Cluster()
	if c == nil {
		return nil
	}
	var want *encryption.Key
	if c.UnlockKey != "" {
		k, err := encryption.ParseUnlockKey(c.UnlockKey)
		if err != nil {
			return fmt.Errorf("the swarm's unlock key: %w", err)
		}
		want = &k
	}
	n.keys.mu.Lock()
	cur, dek := n.keys.kek, n.keys.dek
	n.keys.mu.Unlock()
	if (cur == nil && want == nil) || (cur != nil && want != nil && cur.Equal(*want)) {
		return nil
	}
	if err := n.saveKeys(dek, want); err != nil {
		return err
	}
	n.log.Info("node key file re-wrapped for the swarm's autolock setting", "locked", want != nil)
	return nil
}

// watchUnlockKey keeps node.key in step with the swarm's unlock key while
// m is this node's manager.
func (n *clusterNode) watchUnlockKey(m *manager.Manager) {
	for {
		n.keys.mu.Lock()
		closed := n.keys.closed
		n.keys.mu.Unlock()
		if closed || n.manager() != m {
			return
		}
		changed := m.Store().Changed()
		wait := time.Second
		// A role change rewrites node.key itself: never race it.
		if n.roleMu.TryLock() {
			if err := n.syncKeys(m); err != nil {
				n.log.Warn("could not re-wrap the node key file for autolock; will retry", "err", err)
			}
			n.roleMu.Unlock()
		} else {
			wait = 100 * time.Millisecond
		}
		select {
		case <-changed:
		case <-time.After(wait):
		}
	}
}

// writeKeyFile writes node.key: the TLS key and the DEK, sealed with kek
// (plain when nil).
func writeKeyFile(path string, keyPEM []byte, dek, kek *encryption.Key) error {
	b, err := encryption.EncodeKeyFile(encryption.NodeKeys{KeyPEM: keyPEM, DEK: dek}, kek)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

// restoredKeys gives a manager restored from a backup a new DEK, and the
// swarm's unlock key as KEK when the backup's swarm has autolock on, so
// the restored state is sealed at rest from its first byte and the node
// stays locked across restarts as its swarm asks.
func restoredKeys(c *state.Cluster) (dek, kek *encryption.Key, err error) {
	k, err := encryption.NewKey()
	if err != nil {
		return nil, nil, err
	}
	if c.UnlockKey == "" {
		return &k, nil, nil
	}
	u, err := encryption.ParseUnlockKey(c.UnlockKey)
	if err != nil {
		return nil, nil, fmt.Errorf("the backup's unlock key: %w", err)
	}
	return &k, &u, nil
}
