package raftnode

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/flotilla-org/flotilla/manager/fsm"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// ForceNewCluster rewrites the Raft state in dir so that this node is the
// only voter, keeping every committed entry: the recovery for a cluster
// that lost its quorum for good (swarm init --force-new-cluster). Raft must
// not be running on dir. The caller then opens it normally; the node elects
// itself and the lost managers can be removed, new ones added.
func ForceNewCluster(dir string, dek *encryption.Key, nodeID, advertise string) error {
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft-recover", Level: hclog.Warn, Output: io.Discard})
	w, err := wal.Open(filepath.Join(dir, "wal"), wal.WithLogger(hl))
	if err != nil {
		return fmt.Errorf("open raft log in %s: %w", dir, err)
	}
	defer w.Close()
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return fmt.Errorf("open raft snapshots in %s: %w", dir, err)
	}
	logs, snaps := encrypt(dek, w, fileSnaps)
	has, err := raft.HasExistingState(logs, w, snaps)
	if err != nil {
		return err
	}
	if !has {
		return fmt.Errorf("%s holds no raft state: this node has nothing to recover from", dir)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.Logger = hl
	_, trans := raft.NewInmemTransport(raft.ServerAddress(advertise))
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(advertise)}}}
	// The FSM here only replays entries to write a snapshot; it is thrown
	// away, and the real one is built when Raft opens again.
	if err := raft.RecoverCluster(rc, fsm.New(state.NewStore()), logs, w, snaps, trans, conf); err != nil {
		return fmt.Errorf("rewrite the raft configuration: %w", err)
	}
	return nil
}
