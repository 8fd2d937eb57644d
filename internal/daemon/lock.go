package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/engineapi"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// Docker's words for a locked node, kept as they are: scripts match them.
var (
	ErrSwarmLocked = errdefs.Unavailable("Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.")
	errNotLocked   = errdefs.Conflict("swarm is not locked")
	errBadKey      = errdefs.Unauthorized("swarm could not be unlocked: invalid key provided. Give the key printed by 'swarm unlock-key' on another manager; a manager that was stopped before a rotation needs the key that was current then")
	errLockedLeave = errdefs.Unavailable("Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message.")
)

var _ engineapi.Locker = (*backend)(nil)

// lockedNode is a manager that restarted while autolock was on: its TLS key
// and its Raft DEK are sealed with the unlock key, so it opens no cluster
// port, runs no Raft and no tasks until 'swarm unlock', as in Docker.
type lockedNode struct {
	st    localState
	certs certFiles // key is the sealed key file
}

// resume starts the node from its data dir, or leaves it locked when its
// keys are sealed.
func (d *Daemon) resume(st *localState, certs certFiles) error {
	keys, err := encryption.DecodeKeyFile(certs.key, nil)
	if errors.Is(err, encryption.ErrLocked) {
		d.mu.Lock()
		d.locked = &lockedNode{st: *st, certs: certs}
		d.mu.Unlock()
		d.log.Warn("this manager is locked (autolock is on): unlock it with 'flotilla swarm unlock' and the swarm's unlock key", "node", st.NodeID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d.paths.keyFile(), err)
	}
	certs.key = keys.KeyPEM
	n, err := startClusterNode(d, st, certs, false, keys.DEK, nil)
	if err != nil {
		return fmt.Errorf("rejoin swarm: %w", err)
	}
	d.setNode(n, "")
	d.log.Info("rejoined swarm", "node", st.NodeID, "role", st.Role)
	return nil
}

func (d *Daemon) lockedNode() *lockedNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.locked
}

// SwarmUnlock opens a locked manager's keys with the unlock key and starts
// it; a wrong key changes nothing.
func (b *backend) SwarmUnlock(ctx context.Context, key string) error {
	d := b.d
	d.opMu.Lock()
	defer d.opMu.Unlock()
	ln := d.lockedNode()
	if ln == nil {
		if d.current() != nil {
			return errNotLocked
		}
		return errdefs.ErrNotInSwarm
	}
	kek, err := encryption.ParseUnlockKey(key)
	if err != nil {
		return errdefs.Invalid("%v", err)
	}
	keys, err := encryption.DecodeKeyFile(ln.certs.key, &kek)
	if errors.Is(err, encryption.ErrDecrypt) {
		return errBadKey
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d.paths.keyFile(), err)
	}
	certs := ln.certs
	certs.key = keys.KeyPEM
	n, err := startClusterNode(d, &ln.st, certs, false, keys.DEK, &kek)
	if err != nil {
		return fmt.Errorf("the key is right but the manager could not start: %w", err)
	}
	d.mu.Lock()
	d.locked, d.node, d.lastErr = nil, n, ""
	d.mu.Unlock()
	d.log.Info("swarm unlocked", "node", ln.st.NodeID)
	// As Docker, answer once the manager is usable: its replica has caught
	// up with a leader. Without a quorum it stays unlocked and catches up
	// later.
	if m := n.manager(); m != nil {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := waitCaughtUp(wctx, m); err != nil {
			d.log.Warn("unlocked, but this manager has not caught up with the swarm yet", "err", err)
		}
	}
	return nil
}

// waitCaughtUp waits for a leader and for the cluster object in the local
// replica.
func waitCaughtUp(ctx context.Context, m *manager.Manager) error {
	if err := m.WaitLeader(ctx); err != nil {
		return err
	}
	for m.Store().Cluster() == nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.Store().Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// SwarmUnlockKey returns the swarm's unlock key ("" without autolock).
func (b *backend) SwarmUnlockKey(ctx context.Context) (string, error) {
	m, err := b.mgr()
	if err != nil {
		return "", err
	}
	return m.UnlockKey()
}

// lockedOp answers swarm init, join and leave on a locked node as Docker
// does; handled is false when the node is not locked.
func (d *Daemon) lockedOp(op string, force bool) (handled bool, err error) {
	if d.lockedNode() == nil {
		return false, nil
	}
	switch op {
	case "init":
		if force {
			return true, ErrSwarmLocked
		}
		return true, errdefs.ErrAlreadyInSwarm
	case "join":
		return true, errdefs.ErrAlreadyInSwarm
	}
	// leave: without the key the node can only forget its swarm.
	if !force {
		return true, errLockedLeave
	}
	d.mu.Lock()
	d.locked = nil
	d.mu.Unlock()
	if err := os.RemoveAll(d.paths.swarmDir()); err != nil {
		return true, err
	}
	d.log.Info("left the swarm while locked")
	return true, nil
}

// lockedInfo is info's Swarm section of a locked node.
func lockedInfo(ln *lockedNode) swarm.Info {
	return swarm.Info{NodeID: ln.st.NodeID, LocalNodeState: swarm.LocalNodeStateLocked}
}

// initAutolock gives a new swarm its unlock key when init asks for
// autolock (the docker CLI sends the flag outside the spec).
func initAutolock(c *state.Cluster, spec *swarm.Spec, autolock bool) error {
	if autolock {
		spec.EncryptionConfig.AutoLockManagers = true
	}
	if !spec.EncryptionConfig.AutoLockManagers {
		return nil
	}
	k, err := manager.NewUnlockKey()
	if err != nil {
		return err
	}
	c.UnlockKey = k
	return nil
}
