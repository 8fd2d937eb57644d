package orchestrator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/scheduler"
	"github.com/flotilla-org/flotilla/manager/state"
)

// The harness drives the orchestrator the way a leader does, but by hand:
// a bare state store, a proposer that applies each batch at once, a clock
// that moves only when a test says so, and simulated agents that report
// what a worker would. Nothing runs in the background: a test calls
// pass (orchestrator passes until one writes nothing) and agents (one
// round of status reports), or converge (both until nothing changes).

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

type harness struct {
	t     testing.TB
	mu    sync.Mutex // apply's, for a test that runs Run beside it
	store *state.Store
	index uint64
	now   time.Time
	o     *Orchestrator
	// held nodes' agents are alive but do not report (a slow or stuck
	// worker); agents of nodes that are not Ready never report.
	held map[string]bool
	// onStart says what an agent reports when it starts a task: running
	// unless a test says otherwise (failed, complete, rejected).
	onStart func(t *state.Task) swarm.TaskState
	// skew is how far the workers' clocks are off the leader's: workers
	// stamp their status reports with their own time.
	skew time.Duration
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, store: state.NewStore(), now: t0, held: map[string]bool{}}
	h.o = h.newOrchestrator()
	return h
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newOrchestrator is what a newly elected leader starts: nothing in
// memory, everything from the store.
func (h *harness) newOrchestrator() *Orchestrator {
	o := New(h.store, func(_ context.Context, ops []state.Op) error { return h.apply(ops...) },
		scheduler.Scheduler{}, slog.New(slog.NewTextHandler(testLog{h.t}, nil)))
	o.now = func() time.Time { return h.now }
	return o
}

// failover moves leadership to another manager: its replica of the state
// (restored from a snapshot of this one) and a fresh orchestrator.
func (h *harness) failover() {
	h.t.Helper()
	var buf bytes.Buffer
	if err := h.store.WriteSnapshot(&buf); err != nil {
		h.t.Fatal(err)
	}
	s := state.NewStore()
	if err := s.Restore(&buf); err != nil {
		h.t.Fatal(err)
	}
	h.store = s
	h.o = h.newOrchestrator()
}

// apply commits one batch as Raft would: the next index, at the proposer's
// clock.

func (h *harness) apply(ops ...state.Op) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.index++
	return h.store.Apply(h.index, state.Batch{Ops: ops, Time: h.now})
}

func (h *harness) mustApply(ops ...state.Op) {
	h.t.Helper()
	if err := h.apply(ops...); err != nil {
		h.t.Fatalf("apply: %v", err)
	}
}

// advance moves the clock (by at least a millisecond, so batch times stay
// ordered).
func (h *harness) advance(d time.Duration) { h.now = h.now.Add(d) }

// passOnce runs one orchestrator pass and returns how many batches it
// wrote.
func (h *harness) passOnce() uint64 {
	h.t.Helper()
	before := h.store.Index()
	if err := h.o.Pass(context.Background()); err != nil {
		h.t.Fatalf("pass: %v", err)
	}
	return h.store.Index() - before
}

// pass runs orchestrator passes until one writes nothing.
func (h *harness) pass() {
	h.t.Helper()
	for range 50 {
		if h.passOnce() == 0 {
			return
		}
	}
	h.t.Fatalf("the orchestrator still writes after 50 passes:\n%s", h.dumpAll())
}

// agents runs one round of every reachable worker: a task it should run
// moves to running (or what onStart says), a task it should stop moves to
// shutdown. It reports whether anything was written.
func (h *harness) agents() bool {
	h.t.Helper()
	var ops []state.Op
	for _, t := range h.store.Tasks() {
		if t.NodeID == "" || Terminal(t.Status.State) || t.Status.State == swarm.TaskStatePending {
			continue // as the dispatcher: a node only sees tasks assigned to it
		}
		n := h.store.Node(t.NodeID)
		if n == nil || n.Status.State != swarm.NodeStateReady || h.held[t.NodeID] {
			continue
		}
		switch {
		case t.DesiredState != swarm.TaskStateRunning:
			ops = append(ops, h.statusOp(t.ID, swarm.TaskStateShutdown, ""))
		case t.Status.State != swarm.TaskStateRunning:
			st := swarm.TaskStateRunning
			if h.onStart != nil {
				st = h.onStart(t)
			}
			if st == t.Status.State {
				continue // e.g. still starting: waiting for a health check
			}
			errMsg := ""
			if st == swarm.TaskStateFailed || st == swarm.TaskStateRejected {
				errMsg = "task: non-zero exit (1)"
			}
			ops = append(ops, h.statusOp(t.ID, st, errMsg))
		}
	}
	if len(ops) == 0 {
		return false
	}
	h.mustApply(ops...)
	return true
}

func (h *harness) statusOp(id string, st swarm.TaskState, errMsg string) state.Op {
	return state.NewPatch(state.TableTasks, id, state.PatchTaskStatus,
		swarm.TaskStatus{Timestamp: h.now.Add(h.skew), State: st, Message: string(st), Err: errMsg})
}

// converge alternates orchestrator passes and agent rounds until neither
// writes anything.
func (h *harness) converge() {
	h.t.Helper()
	for range 50 {
		h.pass()
		if !h.agents() {
			return
		}
	}
	h.t.Fatalf("no convergence after 50 rounds:\n%s", h.dumpAll())
}

// exit reports that a running task ended on its own.
func (h *harness) exit(id string, st swarm.TaskState) {
	h.t.Helper()
	errMsg := ""
	if st == swarm.TaskStateFailed {
		errMsg = "task: non-zero exit (1)"
	}
	h.mustApply(h.statusOp(id, st, errMsg))
}

// --- nodes ---

type nodeOpt func(*state.Node)

func label(k, v string) nodeOpt {
	return func(n *state.Node) {
		if n.Spec.Labels == nil {
			n.Spec.Labels = map[string]string{}
		}
		n.Spec.Labels[k] = v
	}
}

func capacity(cpus float64) nodeOpt {
	return func(n *state.Node) {
		n.Description.Resources = swarm.Resources{NanoCPUs: int64(cpus * 1e9), MemoryBytes: 1 << 30}
	}
}

func availability(a swarm.NodeAvailability) nodeOpt {
	return func(n *state.Node) { n.Spec.Availability = a }
}

// addNode creates a ready, active worker.
func (h *harness) addNode(id string, opts ...nodeOpt) {
	h.t.Helper()
	n := &state.Node{Role: swarm.NodeRoleWorker}
	n.ID = id
	n.Spec.Role = swarm.NodeRoleWorker
	n.Spec.Availability = swarm.NodeAvailabilityActive
	n.Description.Hostname = "host-" + id
	n.Description.Platform = swarm.Platform{OS: "linux", Architecture: "x86_64"}
	n.Status.State = swarm.NodeStateReady
	for _, o := range opts {
		o(n)
	}
	h.mustApply(state.NewOp(state.TableNodes, state.ActionCreate, n, 0))
}

func (h *harness) addNodes(ids ...string) {
	h.t.Helper()
	for _, id := range ids {
		h.addNode(id)
	}
}

// setNodeState is the dispatcher marking a node Down or Ready.
func (h *harness) setNodeState(id string, st swarm.NodeState) {
	h.t.Helper()
	n := h.store.Node(id)
	h.mustApply(state.NewPatch(state.TableNodes, id, state.PatchNodeStatus, state.NodeStatus{
		Status: swarm.NodeStatus{State: st, Addr: n.Status.Addr}}))
}

// updateNode is `node update` (availability, labels).
func (h *harness) updateNode(id string, opts ...nodeOpt) {
	h.t.Helper()
	n := h.store.Node(id).Copy()
	for _, o := range opts {
		o(n)
	}
	h.mustApply(state.NewOp(state.TableNodes, state.ActionUpdate, n, n.Version.Index))
}

func (h *harness) removeNode(id string) {
	h.t.Helper()
	h.mustApply(state.NewOp(state.TableNodes, state.ActionDelete, h.store.Node(id), 0))
}

// --- services ---

type specOpt func(*swarm.ServiceSpec)

func replicatedSpec(name string, replicas uint64, opts ...specOpt) swarm.ServiceSpec {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name}}
	spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &replicas}
	spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "app:1"}
	for _, o := range opts {
		o(&spec)
	}
	return spec
}

func globalSpec(name string, opts ...specOpt) swarm.ServiceSpec {
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name}}
	spec.Mode.Global = &swarm.GlobalService{}
	spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "app:1"}
	for _, o := range opts {
		o(&spec)
	}
	return spec
}

func image(ref string) specOpt {
	return func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = ref }
}

func restart(cond swarm.RestartPolicyCondition, delay time.Duration, maxAttempts uint64, window time.Duration) specOpt {
	return func(s *swarm.ServiceSpec) {
		rp := &swarm.RestartPolicy{Condition: cond, Delay: &delay}
		if maxAttempts > 0 {
			rp.MaxAttempts = &maxAttempts
		}
		if window > 0 {
			rp.Window = &window
		}
		s.TaskTemplate.RestartPolicy = rp
	}
}

func constraints(cs ...string) specOpt {
	return func(s *swarm.ServiceSpec) {
		if s.TaskTemplate.Placement == nil {
			s.TaskTemplate.Placement = &swarm.Placement{}
		}
		s.TaskTemplate.Placement.Constraints = cs
	}
}

func reserveCPU(cpus float64) specOpt {
	return func(s *swarm.ServiceSpec) {
		s.TaskTemplate.Resources = &swarm.ResourceRequirements{Reservations: &swarm.Resources{NanoCPUs: int64(cpus * 1e9)}}
	}
}

func updateCfg(parallelism uint64, delay, monitor time.Duration, action swarm.FailureAction, order swarm.UpdateOrder) specOpt {
	return func(s *swarm.ServiceSpec) {
		s.UpdateConfig = &swarm.UpdateConfig{Parallelism: parallelism, Delay: delay, Monitor: monitor,
			FailureAction: action, Order: order}
	}
}

// create stores a service as the API does; its ID is its name.
func (h *harness) create(spec swarm.ServiceSpec) string {
	h.t.Helper()
	s := &state.Service{SpecVersion: 1}
	s.ID = spec.Name
	s.Spec = spec
	h.mustApply(state.NewOp(state.TableServices, state.ActionCreate, s, 0))
	return s.ID
}

// update is `service update` (manager.UpdateService): a changed task
// template bumps SpecVersion and starts a rolling update.
func (h *harness) update(id string, opts ...specOpt) {
	h.t.Helper()
	cur := h.store.Service(id)
	u := cur.Copy()
	spec := u.Spec
	for _, o := range opts {
		o(&spec)
	}
	if jsonOf(h.t, spec.TaskTemplate) == jsonOf(h.t, cur.Spec.TaskTemplate) {
		prev := cur.Spec
		u.PreviousSpec, u.Spec = &prev, spec
	} else {
		u.Spec = cur.Copy().Spec // spec shares pointers with u.Spec: keep the old one intact
		u.NextSpec(spec)         // as manager.UpdateService does
		now := h.now
		u.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, StartedAt: &now, Message: "update in progress"}
	}
	h.mustApply(state.NewOp(state.TableServices, state.ActionUpdate, u, cur.Version.Index))
}

func jsonOf(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// scale is `service scale`.
func (h *harness) scale(id string, n uint64) {
	h.t.Helper()
	h.update(id, func(s *swarm.ServiceSpec) { s.Mode.Replicated.Replicas = &n })
}

// remove is `service rm` (manager.RemoveService): the service goes, its
// tasks are marked for removal.
func (h *harness) remove(id string) {
	h.t.Helper()
	ops := []state.Op{state.NewOp(state.TableServices, state.ActionDelete, h.store.Service(id), 0)}
	for _, t := range h.store.TasksByService(id) {
		if t.DesiredState != swarm.TaskStateRemove {
			ops = append(ops, state.NewPatch(state.TableTasks, t.ID, state.PatchTaskShutdown,
				state.TaskShutdown{Desired: swarm.TaskStateRemove, Reason: state.ReasonRemoved}))
		}
	}
	h.mustApply(ops...)
}

func (h *harness) setRetention(n int64) {
	h.t.Helper()
	c := &state.Cluster{}
	if cur := h.store.Cluster(); cur != nil {
		c = cur.Copy()
	} else {
		c.ID = "cluster"
	}
	c.Spec.Orchestration.TaskHistoryRetentionLimit = &n
	action := state.ActionUpdate
	if h.store.Cluster() == nil {
		action = state.ActionCreate
	}
	h.mustApply(state.NewOp(state.TableCluster, action, c, 0))
}

// --- what a user sees ---

func (h *harness) service(id string) *state.Service { return h.store.Service(id) }

func (h *harness) tasks(svc string) []*state.Task { return h.store.TasksByService(svc) }

// desired returns the tasks managers want running.
func (h *harness) desired(svc string) []*state.Task {
	var out []*state.Task
	for _, t := range h.tasks(svc) {
		if t.DesiredState == swarm.TaskStateRunning {
			out = append(out, t)
		}
	}
	return out
}

// running returns the tasks that are wanted and run.
func (h *harness) running(svc string) []*state.Task {
	var out []*state.Task
	for _, t := range h.desired(svc) {
		if t.Status.State == swarm.TaskStateRunning {
			out = append(out, t)
		}
	}
	return out
}

// observedRunning returns every task a worker runs, wanted or not.
func (h *harness) observedRunning(svc string) []*state.Task {
	var out []*state.Task
	for _, t := range h.tasks(svc) {
		if t.Status.State == swarm.TaskStateRunning {
			out = append(out, t)
		}
	}
	return out
}

func bySlot(ts []*state.Task) map[int][]*state.Task {
	out := map[int][]*state.Task{}
	for _, t := range ts {
		out[t.Slot] = append(out[t.Slot], t)
	}
	return out
}

func byNode(ts []*state.Task) map[string]int {
	out := map[string]int{}
	for _, t := range ts {
		out[t.NodeID]++
	}
	return out
}

func slotsOf(ts []*state.Task) []int {
	var out []int
	for _, t := range ts {
		out = append(out, t.Slot)
	}
	sort.Ints(out)
	return out
}

func (h *harness) task(id string) *state.Task { return h.store.Task(id) }

// dump shows a service's tasks as `service ps` would.
func (h *harness) dump(svc string) string {
	ts := h.tasks(svc)
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Slot != ts[j].Slot {
			return ts[i].Slot < ts[j].Slot
		}
		if ts[i].NodeID != ts[j].NodeID {
			return ts[i].NodeID < ts[j].NodeID
		}
		return ts[i].CreatedAt.Before(ts[j].CreatedAt)
	})
	var b strings.Builder
	if s := h.service(svc); s != nil {
		st := ""
		if s.UpdateStatus != nil {
			st = string(s.UpdateStatus.State) + " (" + s.UpdateStatus.Message + ")"
		}
		fmt.Fprintf(&b, "service %s specversion=%d update=%s\n", svc, s.SpecVersion, st)
	} else {
		fmt.Fprintf(&b, "service %s (removed)\n", svc)
	}
	for _, t := range ts {
		fmt.Fprintf(&b, "  slot=%d node=%-4s v%d %s desired=%-8s state=%-9s reason=%-9s created=+%v %s\n", t.Slot, t.NodeID,
			t.SpecVersion, t.Spec.ContainerSpec.Image, t.DesiredState, t.Status.State, t.ShutdownReason, t.CreatedAt.Sub(t0).Truncate(time.Millisecond), t.Status.Err)
	}
	return b.String()
}

func (h *harness) dumpAll() string {
	seen := map[string]bool{}
	var b strings.Builder
	for _, t := range h.store.Tasks() {
		if !seen[t.ServiceID] {
			seen[t.ServiceID] = true
			b.WriteString(h.dump(t.ServiceID))
		}
	}
	return b.String()
}

// expectReplicas checks that slots 1..n each run exactly one wanted task
// and nothing else is wanted.
func (h *harness) expectReplicas(svc string, n int) {
	h.t.Helper()
	desired := h.desired(svc)
	running := h.running(svc)
	want := make([]int, 0, n)
	for i := 1; i <= n; i++ {
		want = append(want, i)
	}
	if got := slotsOf(desired); fmt.Sprint(got) != fmt.Sprint(want) || len(running) != n {
		h.t.Fatalf("want slots %v each with one running task; desired slots %v, %d running\n%s", want, got, len(running), h.dump(svc))
	}
}

func (h *harness) expectUpdateState(svc string, want swarm.UpdateState) {
	h.t.Helper()
	s := h.service(svc)
	if s.UpdateStatus == nil || s.UpdateStatus.State != want {
		h.t.Fatalf("update state: want %q\n%s", want, h.dump(svc))
	}
}

// --- checks of bugs fixed ---

// recorder collects check failures of a known bug.
type recorder struct{ msgs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// holds runs a check that once was a known bug and now must pass; bug
// says what used to go wrong.
func holds(t *testing.T, bug string, check func(r *recorder)) {
	t.Helper()
	r := &recorder{}
	check(r)
	if len(r.msgs) > 0 {
		t.Errorf("regression: %s\n%s", bug, strings.Join(r.msgs, "\n"))
	}
}
