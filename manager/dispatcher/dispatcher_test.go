package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/dispatcher"
	"github.com/flotilla-org/flotilla/manager/state"
)

// period is the heartbeat period set in the cluster spec: short, so a node
// is Down after 3 × 100 ms.
const period = 100 * time.Millisecond

// fakeRaft applies proposals straight to the store, in order, and keeps
// every batch it applied.
type fakeRaft struct {
	store *state.Store

	mu      sync.Mutex
	index   uint64
	batches []state.Batch
	fail    error               // refuse proposals with this error while set
	failed  int                 // proposals refused so far
	before  func(b state.Batch) // runs before a proposal is applied
}

func (f *fakeRaft) proposeAll(ctx context.Context, bs []state.Batch) error {
	for _, b := range bs {
		if err := f.propose(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeRaft) propose(_ context.Context, b state.Batch) error {
	f.mu.Lock()
	before, fail := f.before, f.fail
	if fail != nil {
		f.failed++
	}
	f.mu.Unlock()
	if fail != nil {
		return fail
	}
	if before != nil {
		before(b)
	}
	return f.apply(b)
}

func (f *fakeRaft) apply(b state.Batch) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.Time.IsZero() {
		b.Time = time.Now().UTC()
	}
	f.index++
	if err := f.store.Apply(f.index, b); err != nil {
		return err
	}
	f.batches = append(f.batches, b)
	return nil
}

func (f *fakeRaft) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeRaft) proposed() []state.Batch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]state.Batch(nil), f.batches...)
}

func ptr[T any](v T) *T { return &v }

func desc(host string) swarm.NodeDescription {
	return swarm.NodeDescription{
		Hostname:  host,
		Platform:  swarm.Platform{Architecture: "x86_64", OS: "linux"},
		Resources: swarm.Resources{NanoCPUs: 2e9, MemoryBytes: 1 << 30},
		Engine:    swarm.EngineDescription{EngineVersion: "test"},
	}
}

func addr(id string) string {
	return "10.0.0." + map[string]string{"a": "1", "b": "2", "c": "3", "m": "4", "d": "5"}[id] + ":2377"
}

// setup returns a store with a cluster whose heartbeat period is short and
// the given nodes Ready, as the dispatcher would have recorded them.
func setup(t *testing.T, ids ...string) (*state.Store, *fakeRaft, *dispatcher.Dispatcher) {
	t.Helper()
	s := state.NewStore()
	fr := &fakeRaft{store: s}
	c := &state.Cluster{}
	c.ID = "cluster"
	c.Spec.Dispatcher.HeartbeatPeriod = period
	ops := []state.Op{state.NewOp(state.TableCluster, state.ActionCreate, c, 0)}
	for _, id := range ids {
		n := &state.Node{Role: swarm.NodeRoleWorker, Addr: addr(id)}
		n.ID = id
		n.Spec.Role = swarm.NodeRoleWorker
		n.Spec.Availability = swarm.NodeAvailabilityActive
		n.Description = desc("host-" + id)
		n.Status = swarm.NodeStatus{State: swarm.NodeStateReady, Addr: addr(id)[:len(addr(id))-5]}
		if id == "m" {
			n.Role, n.Spec.Role = swarm.NodeRoleManager, swarm.NodeRoleManager
			n.ManagerStatus = &swarm.ManagerStatus{Addr: addr(id), Reachability: swarm.ReachabilityReachable}
		}
		ops = append(ops, state.NewOp(state.TableNodes, state.ActionCreate, n, 0))
	}
	if err := fr.apply(state.Batch{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	fr.batches = nil
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return s, fr, dispatcher.New(s, fr.proposeAll, log)
}

func run(t *testing.T, d *dispatcher.Dispatcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

// beat heartbeats the nodes every period/4 until the test ends or stop
// is closed.
func beat(t *testing.T, d *dispatcher.Dispatcher, ids ...string) (stop func()) {
	ch := make(chan struct{})
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(period / 4)
		defer tick.Stop()
		for {
			for _, id := range ids {
				d.Heartbeat(id, addr(id), ptr(desc("host-"+id)))
			}
			select {
			case <-ch:
				return
			case <-tick.C:
			}
		}
	}()
	stop = func() {
		once.Do(func() { close(ch) })
		<-done
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after %s: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stateIs(s *state.Store, id string, want swarm.NodeState) func() error {
	return func() error {
		n := s.Node(id)
		if n == nil {
			return fmt.Errorf("node %s missing", id)
		}
		if n.Status.State != want {
			return fmt.Errorf("node %s is %s, want %s", id, n.Status.State, want)
		}
		return nil
	}
}

func TestPeriod(t *testing.T) {
	s := state.NewStore()
	d := dispatcher.New(s, nil, slog.Default())
	if p := d.Period(); p != dispatcher.DefaultPeriod {
		t.Errorf("period without a cluster = %s", p)
	}
	_, _, d = setup(t)
	if p := d.Period(); p != period {
		t.Errorf("period = %s, want the spec's %s", p, period)
	}
}

// A silent node is marked Down after MissedBeats periods; nodes that
// report stay Ready, and steady heartbeats write nothing.
func TestSilentNodeGoesDown(t *testing.T) {
	s, fr, d := setup(t, "a", "b", "c", "m")
	beat(t, d, "a", "b")
	start := time.Now()
	run(t, d)
	waitFor(t, 5*time.Second, stateIs(s, "c", swarm.NodeStateDown))
	waitFor(t, 5*time.Second, stateIs(s, "m", swarm.NodeStateDown))
	took := time.Since(start)
	grace := dispatcher.MissedBeats * period
	if took < grace {
		t.Errorf("c went Down after %s, before the %s grace period", took, grace)
	}
	t.Logf("silent nodes Down after %s (grace %s)", took, grace)
	c := s.Node("c")
	if c.Status.Message != "heartbeat failure" {
		t.Errorf("down message = %q", c.Status.Message)
	}
	if m := s.Node("m"); m.ManagerStatus == nil || m.ManagerStatus.Reachability != swarm.ReachabilityUnreachable {
		t.Errorf("silent manager: manager status %+v, want unreachable", m.ManagerStatus)
	}
	// a and b beat all along (longer than the grace period): they stay
	// Ready, and nothing is written for them since nothing changed.
	for _, id := range []string{"a", "b"} {
		if err := stateIs(s, id, swarm.NodeStateReady)(); err != nil {
			t.Error(err)
		}
	}
	for _, b := range fr.proposed() {
		for _, op := range b.Ops {
			if op.ID == "a" || op.ID == "b" {
				t.Errorf("wrote node %s though its status never changed", op.ID)
			}
		}
	}
	// Down is written once, not on every tick.
	downs := 0
	for _, b := range fr.proposed() {
		for _, op := range b.Ops {
			if op.ID == "c" {
				downs++
			}
		}
	}
	if downs != 1 {
		t.Errorf("node c written %d times, want once", downs)
	}
}

// Nodes that go quiet together are marked Down in one entry.
func TestDownIsBatched(t *testing.T) {
	s, fr, d := setup(t, "a", "b", "c", "m")
	run(t, d)
	for _, id := range []string{"a", "b", "c", "m"} {
		waitFor(t, 5*time.Second, stateIs(s, id, swarm.NodeStateDown))
	}
	batches := fr.proposed()
	if len(batches) != 1 || len(batches[0].Ops) != 4 {
		t.Errorf("proposed %d batches (%v), want one of 4 ops", len(batches), batches)
	}
}

// A Down node that reports again is Ready at once (Heartbeat kicks Run),
// with its new address and description; reports that arrive together are
// written in one entry.
func TestReadyOnReturn(t *testing.T) {
	s, fr, d := setup(t, "a", "b", "m")
	// Mark them Down as a previous leader would have.
	var ops []state.Op
	for _, id := range []string{"a", "b", "m"} {
		n := s.Node(id).Copy()
		n.Status.State = swarm.NodeStateDown
		if n.ManagerStatus != nil {
			n.ManagerStatus.Reachability = swarm.ReachabilityUnreachable
		}
		ops = append(ops, state.NewOp(state.TableNodes, state.ActionUpdate, n, 0))
	}
	if err := fr.apply(state.Batch{Ops: ops}); err != nil {
		t.Fatal(err)
	}
	fr.mu.Lock()
	fr.batches = nil
	fr.mu.Unlock()

	// Reports before Run starts are held and written together.
	newDesc := desc("renamed-a")
	newDesc.Resources.NanoCPUs = 8e9
	d.Heartbeat("a", "10.9.9.9:2377", &newDesc)
	d.Heartbeat("b", addr("b"), ptr(desc("host-b")))
	d.Heartbeat("m", addr("m"), ptr(desc("host-m")))
	start := time.Now()
	run(t, d)
	for _, id := range []string{"a", "b", "m"} {
		waitFor(t, 5*time.Second, stateIs(s, id, swarm.NodeStateReady))
	}
	// Kicked, not waiting for a tick of period/4 — allow slack
	// for a loaded machine but far below the grace period.
	if took := time.Since(start); took > dispatcher.MissedBeats*period {
		t.Logf("warning: Ready written only after %s", took)
	}
	batches := fr.proposed()
	if len(batches) < 1 || len(batches[0].Ops) != 3 {
		t.Errorf("first of %d batches (%+v) is not the 3 reports", len(batches), batches)
	}
	a := s.Node("a")
	if a.Status.Addr != "10.9.9.9" || a.Status.Message != "" || a.Description.Hostname != "renamed-a" || a.Description.Resources.NanoCPUs != 8e9 {
		t.Errorf("returned node a: status %+v, description %+v", a.Status, a.Description)
	}
	if m := s.Node("m"); m.ManagerStatus == nil || m.ManagerStatus.Reachability != swarm.ReachabilityReachable {
		t.Errorf("returned manager: %+v", m.ManagerStatus)
	}

	// Down again when it stops, Ready again on its next beat.
	waitFor(t, 5*time.Second, stateIs(s, "b", swarm.NodeStateDown))
	d.Heartbeat("b", addr("b"), ptr(desc("host-b")))
	waitFor(t, time.Second, stateIs(s, "b", swarm.NodeStateReady))
}

// A failed proposal (no leader for a moment) is retried on the next tick.
func TestFailedProposalIsRetried(t *testing.T) {
	s, fr, d := setup(t, "a")
	fr.setFail(errors.New("no leader"))
	run(t, d)
	waitFor(t, 5*time.Second, func() error {
		fr.mu.Lock()
		defer fr.mu.Unlock()
		if fr.failed < 2 {
			return fmt.Errorf("%d failed proposals, want a retry", fr.failed)
		}
		return nil
	})
	if err := stateIs(s, "a", swarm.NodeStateReady)(); err != nil {
		t.Fatal(err)
	}
	fr.setFail(nil)
	waitFor(t, 5*time.Second, stateIs(s, "a", swarm.NodeStateDown))
}

// A node created while Run goes on gets a full grace period from when the
// dispatcher first sees it.
func TestNewNodeGetsGrace(t *testing.T) {
	s, fr, d := setup(t, "a", "b")
	beat(t, d, "a")
	run(t, d)
	// b is silent: once it is Down, Run has been going for a grace period.
	waitFor(t, 5*time.Second, stateIs(s, "b", swarm.NodeStateDown))
	n := &state.Node{Addr: addr("d")}
	n.ID = "d"
	n.Status.State = swarm.NodeStateReady
	created := time.Now()
	if err := fr.apply(state.Batch{Ops: []state.Op{state.NewOp(state.TableNodes, state.ActionCreate, n, 0)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, stateIs(s, "d", swarm.NodeStateDown))
	if took := time.Since(created); took < dispatcher.MissedBeats*period {
		t.Errorf("new node Down %s after it was created, within its grace period", took)
	}
	d.Forget("d")
}

// The dispatcher's status writes are patches of the status alone, so a
// spec change committed between its read and its write is kept.
func TestStatusWriteKeepsConcurrentSpecUpdate(t *testing.T) {
	s, fr, d := setup(t, "a")
	var once sync.Once
	fr.mu.Lock()
	fr.before = func(state.Batch) {
		// The user drains the node just as it goes Down.
		once.Do(func() {
			u := s.Node("a").Copy()
			u.Spec.Availability = swarm.NodeAvailabilityDrain
			if err := fr.apply(state.Batch{Ops: []state.Op{state.NewOp(state.TableNodes, state.ActionUpdate, u, u.Version.Index)}}); err != nil {
				t.Error(err)
			}
		})
	}
	fr.mu.Unlock()
	run(t, d)
	waitFor(t, 5*time.Second, stateIs(s, "a", swarm.NodeStateDown))
	if got := s.Node("a").Spec.Availability; got != swarm.NodeAvailabilityDrain {
		t.Errorf("availability = %s: the user's drain, committed before the status write, was lost", got)
	}
}

// Late counts a node that missed its last beat until it is marked Down;
// nodes that beat are never late.
func TestLateCountsSilentNodesNotYetDown(t *testing.T) {
	s, _, d := setup(t, "a", "b", "c")
	if n := d.Late(); n != 0 {
		t.Fatalf("before Run (not leading): %d late, want 0", n)
	}
	beat(t, d, "a", "b")
	run(t, d)
	waitFor(t, 5*time.Second, func() error {
		if n := d.Late(); n != 1 {
			return fmt.Errorf("%d late, want c alone", n)
		}
		return nil
	})
	waitFor(t, 5*time.Second, stateIs(s, "c", swarm.NodeStateDown))
	if n := d.Late(); n != 0 {
		t.Errorf("c is Down, a and b beat: %d late, want 0", n)
	}
}
