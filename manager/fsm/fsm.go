// Package fsm is the thin raft.FSM of the managers: it decodes a versioned
// command envelope and hands the command to the state store. Anything it
// cannot decode is a bug or a newer binary in the cluster; it panics rather
// than let replicas diverge.
package fsm

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/flotilla-org/flotilla/manager/state"
)

// Command types: the first byte of every log entry.
const (
	TypeBatch byte = 1
)

// Envelope version of TypeBatch entries written by this binary.
const batchVersion byte = 1

// EncodeBatch frames a state batch as a log entry.
func EncodeBatch(b state.Batch) ([]byte, error) {
	buf := make([]byte, 0, 2+state.BatchSize(b))
	return state.AppendBatch(append(buf, TypeBatch, batchVersion), b)
}

// FSM applies committed entries to a state.Store.
type FSM struct {
	store *state.Store
}

// New returns an FSM over store.
func New(store *state.Store) *FSM { return &FSM{store: store} }

// Apply returns nil or the error the batch was refused with; a refusal is a
// normal outcome (stale version, name in use) and identical on every replica.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	if len(l.Data) < 2 {
		panic(fmt.Sprintf("fsm: log entry %d is %d bytes, too short for an envelope", l.Index, len(l.Data)))
	}
	typ, ver, payload := l.Data[0], l.Data[1], l.Data[2:]
	switch typ {
	case TypeBatch:
		if ver != batchVersion {
			panic(fmt.Sprintf("fsm: log entry %d: batch envelope version %d is unknown to this binary (it knows %d); upgrade this manager", l.Index, ver, batchVersion))
		}
		var b state.Batch
		if err := state.UnmarshalJSON(payload, &b); err != nil {
			panic(fmt.Sprintf("fsm: log entry %d: undecodable batch: %v", l.Index, err))
		}
		return f.store.Apply(l.Index, b)
	default:
		panic(fmt.Sprintf("fsm: log entry %d has unknown command type %d; upgrade this manager", l.Index, typ))
	}
}

// Snapshot captures the state at this point; Persist writes it later.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &snapshot{sn: f.store.Snapshot()}, nil
}

// Restore replaces the state with a snapshot.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.store.Restore(rc)
}

type snapshot struct{ sn *state.Snapshot }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.sn.Write(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
