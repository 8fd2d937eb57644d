package raftnode

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/flotilla-org/flotilla/security/encryption"
)

// keyCurrentTerm is the stable-store key hashicorp/raft keeps its current
// term under (part of its on-disk format).
var keyCurrentTerm = []byte("CurrentTerm")

// Term is the current Raft term of this node.
func (n *Node) Term() uint64 { return n.Raft.CurrentTerm() }

// SeedFromSnapshot writes a Raft state into dir (which must not hold one)
// made of a single snapshot of the state at index and term, with this node
// as the only voter: the start of a cluster restored from a backup. Raft
// opens it as it opens a node that compacted its log, so the next entry
// is index+1 and object versions keep growing. The current term is set to
// term so that new entries never carry a lower term than the snapshot.
// With a DEK the snapshot is sealed with it, like every snapshot raft
// writes.
func SeedFromSnapshot(dir string, dek *encryption.Key, nodeID, advertise string, index, term uint64, state []byte) error {
	if term == 0 {
		term = 1
	}
	if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
		return err
	}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft-restore", Level: hclog.Warn, Output: io.Discard})
	w, err := wal.Open(filepath.Join(dir, "wal"), wal.WithLogger(hl))
	if err != nil {
		return fmt.Errorf("create raft log in %s: %w", dir, err)
	}
	defer w.Close()
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return fmt.Errorf("create raft snapshots in %s: %w", dir, err)
	}
	logs, snaps := encrypt(dek, w, fileSnaps)
	has, err := raft.HasExistingState(logs, w, snaps)
	if err != nil {
		return err
	}
	if has {
		return fmt.Errorf("%s already holds raft state", dir)
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(advertise))
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(nodeID), Address: raft.ServerAddress(advertise)}}}
	// As raft.RecoverCluster does, the configuration counts as committed
	// at index 1.
	sink, err := snaps.Create(1, index, term, conf, 1, trans)
	if err != nil {
		return fmt.Errorf("create the raft snapshot: %w", err)
	}
	if _, err := sink.Write(state); err != nil {
		sink.Cancel()
		return fmt.Errorf("write the raft snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("write the raft snapshot: %w", err)
	}
	return w.SetUint64(keyCurrentTerm, term)
}
