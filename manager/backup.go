package manager

import (
	"bytes"
	"context"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// BackupState is the cluster state as of a moment that follows every write
// acknowledged before it was asked for.
type BackupState struct {
	ClusterID string
	Index     uint64 // Raft index of the last write the state holds
	Term      uint64
	State     []byte // the state snapshot, as a Raft snapshot holds it
	Managers  []Peer
}

// Peer is a Raft member.
type Peer struct{ NodeID, Addr string }

// Backup captures a consistent copy of the whole state (leader only).
// Every write this cluster acknowledged was applied on the leader before
// being acknowledged; the barrier commits an entry in this term through a
// quorum, so it proves this node still leads and that every earlier entry
// is applied here. The snapshot taken after it holds them all, and writes
// that go on meanwhile do not disturb it (the published state is frozen).
func (m *Manager) Backup(ctx context.Context) (BackupState, error) {
	if !m.raft.IsLeader() {
		return BackupState{}, errdefs.Unavailable("this manager is not the leader; a backup is taken on the leader")
	}
	timeout := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	if err := m.raft.Barrier(timeout); err != nil {
		return BackupState{}, errdefs.Unavailable("cannot confirm that every acknowledged write is applied (%v): the swarm may have lost its leader or quorum; retry, or see 'flotilla swarm init --force-new-cluster'", err)
	}
	c, err := m.Cluster()
	if err != nil {
		return BackupState{}, err
	}
	sn := m.store.Snapshot()
	var buf bytes.Buffer
	if err := sn.Write(&buf); err != nil {
		return BackupState{}, err
	}
	out := BackupState{ClusterID: c.ID, Index: sn.Index(), Term: m.raft.Term(), State: buf.Bytes()}
	for _, p := range m.Managers() {
		out.Managers = append(out.Managers, Peer{NodeID: p.NodeID, Addr: p.Addr})
	}
	return out, nil
}
