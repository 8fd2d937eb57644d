package fsm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/fsm"
	"github.com/flotilla-org/flotilla/manager/state"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func node(id string) *state.Node {
	n := &state.Node{}
	n.ID = id
	n.Spec.Role = swarm.NodeRoleWorker
	n.Spec.Availability = swarm.NodeAvailabilityActive
	n.Description.Hostname = "host-" + id
	return n
}

func encode(t testing.TB, ops ...state.Op) []byte {
	t.Helper()
	data, err := fsm.EncodeBatch(state.Batch{Ops: ops, Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func create(id string) state.Op {
	return state.NewOp(state.TableNodes, state.ActionCreate, node(id), 0)
}

func command(index uint64, data []byte) *raft.Log {
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

func dump(t testing.TB, s *state.Store) string {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestEnvelope(t *testing.T) {
	data := encode(t, create("a"))
	if data[0] != fsm.TypeBatch || data[1] != 1 {
		t.Fatalf("envelope header = %v, want [TypeBatch 1]", data[:2])
	}
	var b state.Batch
	if err := json.Unmarshal(data[2:], &b); err != nil {
		t.Fatalf("payload: %v", err)
	}
	if len(b.Ops) != 1 || b.Ops[0].ID != "a" || !b.Time.Equal(t0) {
		t.Errorf("decoded batch = %+v", b)
	}
}

func TestApply(t *testing.T) {
	s := state.NewStore()
	f := fsm.New(s)
	if resp := f.Apply(command(4, encode(t, create("a"), create("b")))); resp != nil {
		t.Fatalf("apply = %v", resp)
	}
	if n := s.Node("a"); n == nil || n.Version.Index != 4 || !n.UpdatedAt.Equal(t0) {
		t.Fatalf("node a = %+v", n)
	}
	// A refused batch is an ordinary answer, the same on every replica.
	before := dump(t, s)
	resp := f.Apply(command(5, encode(t, create("c"), create("a"))))
	err, ok := resp.(error)
	if !ok || !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("apply of a duplicate create = %#v, want a conflict error", resp)
	}
	if dump(t, s) != before {
		t.Error("a refused batch changed the state")
	}
	// Entries that are not commands carry nothing for the state.
	for _, typ := range []raft.LogType{raft.LogNoop, raft.LogBarrier, raft.LogConfiguration} {
		if resp := f.Apply(&raft.Log{Index: 6, Type: typ, Data: []byte{0xff}}); resp != nil {
			t.Errorf("apply of %s = %v", typ, resp)
		}
	}
	if dump(t, s) != before {
		t.Error("a non-command entry changed the state")
	}
}

// An entry the FSM cannot decode stops the replica rather than let it
// diverge from the others.
func TestApplyPanicsOnUndecodable(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		msg  string
	}{
		{"empty", nil, "too short"},
		{"one byte", []byte{fsm.TypeBatch}, "too short"},
		{"unknown type", append([]byte{99, 1}, encode(t, create("a"))[2:]...), "unknown command type 99"},
		{"unknown version", append([]byte{fsm.TypeBatch, 2}, encode(t, create("a"))[2:]...), "version 2 is unknown"},
		{"bad payload", []byte{fsm.TypeBatch, 1, '{', 'x'}, "undecodable batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := state.NewStore()
			f := fsm.New(s)
			defer func() {
				v := recover()
				if v == nil {
					t.Fatal("no panic")
				}
				msg := fmt.Sprint(v)
				if !strings.Contains(msg, tc.msg) || !strings.Contains(msg, "log entry 9") {
					t.Errorf("panic %q does not mention %q and the entry index", msg, tc.msg)
				}
				if len(s.Nodes()) != 0 || s.Index() != 0 {
					t.Error("the state changed before the panic")
				}
			}()
			f.Apply(command(9, tc.data))
		})
	}
}

// memSink is a raft.SnapshotSink in memory that records how it ended.
type memSink struct {
	bytes.Buffer
	failWrite           bool
	closed, cancelled   bool
	closeErr, cancelErr error
}

func (s *memSink) Write(p []byte) (int, error) {
	if s.failWrite {
		return 0, errors.New("disk full")
	}
	return s.Buffer.Write(p)
}
func (s *memSink) ID() string     { return "mem" }
func (s *memSink) Close() error   { s.closed = true; return s.closeErr }
func (s *memSink) Cancel() error  { s.cancelled = true; return s.cancelErr }
func (s *memSink) String() string { return s.Buffer.String() }

var _ raft.SnapshotSink = (*memSink)(nil)

type trackingReader struct {
	io.Reader
	closed bool
}

func (r *trackingReader) Close() error { r.closed = true; return nil }

func TestSnapshotRestore(t *testing.T) {
	s := state.NewStore()
	f := fsm.New(s)
	f.Apply(command(3, encode(t, create("a"), create("b"))))
	want := dump(t, s)

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after Snapshot (raft lets them run while Persist writes) do
	// not leak into it.
	f.Apply(command(4, encode(t, create("c"))))
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Errorf("sink closed=%v cancelled=%v, want closed only", sink.closed, sink.cancelled)
	}
	if sink.String() != want {
		t.Errorf("persisted snapshot:\n%s\nwant\n%s", sink.String(), want)
	}

	r := state.NewStore()
	rf := fsm.New(r)
	rf.Apply(command(1, encode(t, create("old"))))
	rc := &trackingReader{Reader: bytes.NewReader(sink.Bytes())}
	if err := rf.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if !rc.closed {
		t.Error("Restore did not close the snapshot reader")
	}
	if got := dump(t, r); got != want || r.Index() != 3 {
		t.Errorf("restored (index %d):\n%s\nwant\n%s", r.Index(), got, want)
	}

	// A failed write cancels the sink instead of closing it.
	snap, _ = f.Snapshot()
	bad := &memSink{failWrite: true}
	if err := snap.Persist(bad); err == nil {
		t.Error("Persist to a failing sink succeeded")
	}
	if !bad.cancelled || bad.closed {
		t.Errorf("failing sink closed=%v cancelled=%v, want cancelled only", bad.closed, bad.cancelled)
	}

	// Restoring garbage fails, changes nothing and still closes.
	before := dump(t, r)
	rc = &trackingReader{Reader: strings.NewReader("garbage")}
	if err := rf.Restore(rc); err == nil {
		t.Error("garbage restored")
	}
	if !rc.closed || dump(t, r) != before {
		t.Errorf("after a garbage restore: closed=%v, state changed=%v", rc.closed, dump(t, r) != before)
	}
}

// Through raft's own in-memory snapshot store, as raft itself drives it.
func TestSnapshotThroughRaftStore(t *testing.T) {
	s := state.NewStore()
	f := fsm.New(s)
	f.Apply(command(7, encode(t, create("a"))))
	store := raft.NewInmemSnapshotStore()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink, err := store.Create(raft.SnapshotVersionMax, 7, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	metas, err := store.List()
	if err != nil || len(metas) != 1 {
		t.Fatalf("snapshots = %v, %v", metas, err)
	}
	_, rc, err := store.Open(metas[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	r := state.NewStore()
	if err := fsm.New(r).Restore(rc); err != nil {
		t.Fatal(err)
	}
	if dump(t, r) != dump(t, s) {
		t.Error("state restored through raft's snapshot store differs")
	}
}

// A real Raft cluster over raft's in-memory transport: entries apply on
// every replica, and a member that joins after the log was compacted is
// brought up to date by a snapshot through FSM.Restore.
func TestRaftReplicatesAndInstallsSnapshot(t *testing.T) {
	type member struct {
		id    raft.ServerID
		addr  raft.ServerAddress
		trans *raft.InmemTransport
		store *state.Store
		raft  *raft.Raft
	}
	conf := func(id raft.ServerID) *raft.Config {
		c := raft.DefaultConfig()
		c.LocalID = id
		c.HeartbeatTimeout = 50 * time.Millisecond
		c.ElectionTimeout = 50 * time.Millisecond
		c.LeaderLeaseTimeout = 50 * time.Millisecond
		c.CommitTimeout = 5 * time.Millisecond
		c.SnapshotThreshold = 1 << 20 // only the snapshot we ask for
		c.SnapshotInterval = time.Hour
		c.TrailingLogs = 1
		c.LogOutput = io.Discard
		return c
	}
	newMember := func(id string) *member {
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		return &member{id: raft.ServerID(id), addr: addr, trans: trans, store: state.NewStore()}
	}
	start := func(m *member, bootstrap bool) {
		t.Helper()
		logs := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		c := conf(m.id)
		if bootstrap {
			err := raft.BootstrapCluster(c, logs, logs, snaps, m.trans, raft.Configuration{Servers: []raft.Server{{ID: m.id, Address: m.addr}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		r, err := raft.NewRaft(c, fsm.New(m.store), logs, logs, snaps, m.trans)
		if err != nil {
			t.Fatal(err)
		}
		m.raft = r
		t.Cleanup(func() { _ = r.Shutdown().Error() })
	}
	a, b := newMember("a"), newMember("b")
	a.trans.Connect(b.addr, b.trans)
	b.trans.Connect(a.addr, a.trans)
	start(a, true)
	deadline := time.Now().Add(10 * time.Second)
	for a.raft.State() != raft.Leader {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 20 {
		fut := a.raft.Apply(encode(t, create(fmt.Sprintf("n%02d", i))), 5*time.Second)
		if err := fut.Error(); err != nil {
			t.Fatal(err)
		}
		if resp := fut.Response(); resp != nil {
			t.Fatalf("apply %d: %v", i, resp)
		}
	}
	// A refused batch comes back as the response, not as a raft error.
	fut := a.raft.Apply(encode(t, create("n00")), 5*time.Second)
	if err := fut.Error(); err != nil {
		t.Fatal(err)
	}
	if err, _ := fut.Response().(error); !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("duplicate create: response %v, want a conflict", fut.Response())
	}
	if err := a.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	fut = a.raft.Apply(encode(t, create("after-snapshot")), 5*time.Second)
	if err := fut.Error(); err != nil {
		t.Fatal(err)
	}

	start(b, false)
	if err := a.raft.AddVoter(b.id, b.addr, 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want := dump(t, a.store)
	for dump(t, b.store) != want {
		if time.Now().After(deadline) {
			t.Fatalf("replica b never caught up:\n%s\nwant\n%s", dump(t, b.store), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b.raft.Stats()["last_snapshot_index"] == "0" {
		t.Errorf("b caught up without installing a snapshot: %v", b.raft.Stats())
	}
	if len(b.store.Nodes()) != 21 {
		t.Errorf("b has %d nodes, want 21", len(b.store.Nodes()))
	}
}
