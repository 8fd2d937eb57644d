package raftnode

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/flotilla-org/flotilla/security/encryption"
)

// encryptedLog seals every entry's Data with the DEK before it reaches the
// log store and opens it on the way back. Entries written before
// encryption existed are plain and read as they are. Only Data is sealed:
// index, term and type stay readable so the WAL can index them.
type encryptedLog struct {
	raft.LogStore
	dek encryption.Key
}

// logAD binds a sealed entry to its index and type, so an entry copied to
// another position fails to open instead of being applied there.
func logAD(l *raft.Log) []byte {
	ad := make([]byte, 0, 18)
	ad = append(ad, "raft-log"...)
	ad = binary.BigEndian.AppendUint64(ad, l.Index)
	return append(ad, byte(l.Type))
}

func (e *encryptedLog) seal(l *raft.Log) (*raft.Log, error) {
	if len(l.Data) == 0 {
		return l, nil
	}
	c := *l // raft keeps using l (the FSM applies it): never change it
	var err error
	if c.Data, err = encryption.Seal(e.dek, l.Data, logAD(l)); err != nil {
		return nil, err
	}
	return &c, nil
}

func (e *encryptedLog) GetLog(index uint64, l *raft.Log) error {
	if err := e.LogStore.GetLog(index, l); err != nil {
		return err
	}
	if !encryption.IsSealed(l.Data) {
		return nil // written before encryption
	}
	plain, err := encryption.Open(e.dek, l.Data, logAD(l))
	if err != nil {
		return fmt.Errorf("raft log entry %d: %w", index, err)
	}
	l.Data = plain
	return nil
}

func (e *encryptedLog) StoreLog(l *raft.Log) error {
	return e.StoreLogs([]*raft.Log{l})
}

func (e *encryptedLog) StoreLogs(logs []*raft.Log) error {
	sealed := make([]*raft.Log, len(logs))
	for i, l := range logs {
		s, err := e.seal(l)
		if err != nil {
			return err
		}
		sealed[i] = s
	}
	return e.LogStore.StoreLogs(sealed)
}

// IsMonotonic passes on raft-wal's promise that indexes only grow, which
// raft checks for with a type assertion.
func (e *encryptedLog) IsMonotonic() bool { return monotonic(e.LogStore) }

// monotonic tells whether the store under a wrapper makes raft-wal's
// promise: a wrapper must pass it on, or raft stops relying on it.
func monotonic(s raft.LogStore) bool {
	m, ok := s.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// encrypt wraps the log and snapshot stores when the manager has a DEK.
func encrypt(dek *encryption.Key, logs raft.LogStore, snaps raft.SnapshotStore) (raft.LogStore, raft.SnapshotStore) {
	if dek == nil {
		return logs, snaps
	}
	return &encryptedLog{LogStore: logs, dek: *dek}, &encryptedSnapshots{SnapshotStore: snaps, dek: *dek}
}
