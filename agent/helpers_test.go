package agent

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// waitFor bounds every poll in these tests; nothing here sleeps for a fixed
// time to let something happen, it polls a condition until this deadline.
const waitFor = 10 * time.Second

// pollEvery is the pause between two looks at a polled condition.
const pollEvery = 2 * time.Millisecond

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollEvery)
	}
}

// logCapture is a slog.Handler that keeps what was logged.
type logCapture struct {
	mu   sync.Mutex
	recs []string // "LEVEL msg"
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r.Level.String()+" "+r.Message)
	return nil
}
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

func (c *logCapture) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs)
}

func (c *logCapture) has(level slog.Level, substr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.recs, func(s string) bool {
		return strings.HasPrefix(s, level.String()+" ") && strings.Contains(s, substr)
	})
}

// execHarness runs one Executor over a fake driver and keeps the history of
// every status report it drained from it.
type execHarness struct {
	t    *testing.T
	e    *Executor
	drv  *fake.Driver
	logs *logCapture

	cancel   context.CancelFunc
	stopOnce sync.Once
	hist     map[string][]swarm.TaskStatus
}

func newExec(t *testing.T, drv *fake.Driver, dbPath string) *execHarness {
	t.Helper()
	h, err := startExec(t, drv, dbPath)
	if err != nil {
		t.Fatalf("Executor.Start: %v", err)
	}
	return h
}

func startExec(t *testing.T, drv *fake.Driver, dbPath string, opts ...func(*Executor)) (*execHarness, error) {
	t.Helper()
	logs := &logCapture{}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Executor{
		NodeID:   "node-1",
		Hostname: "host-a",
		Drivers:  map[string]driver.Driver{fake.Name: drv},
		Default:  fake.Name,
		DBPath:   dbPath,
		Log:      slog.New(logs),
	}
	for _, o := range opts {
		o(e)
	}
	h := &execHarness{t: t, e: e, drv: drv, logs: logs, cancel: cancel, hist: map[string][]swarm.TaskStatus{}}
	t.Cleanup(h.stop)
	return h, e.Start(ctx)
}

// stop ends the executor as an agent shutdown does: cancel, then Wait.
func (h *execHarness) stop() {
	h.stopOnce.Do(func() {
		h.cancel()
		done := make(chan struct{})
		go func() { h.e.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitFor):
			h.t.Errorf("Executor.Wait did not return after its context ended")
		}
	})
}

// drain moves the pending reports into the history, checking that each
// task's reported state never moves back (a report may be sent again when
// the managers' view lags behind).
func (h *execHarness) drain() []nodeapi.TaskStatusUpdate {
	h.t.Helper()
	us := h.e.Reports()
	for _, u := range us {
		prev := h.hist[u.TaskID]
		if n := len(prev); n > 0 && rank(u.Status.State) < rank(prev[n-1].State) {
			h.t.Errorf("task %s: report %q after %q: observed states must move forward", u.TaskID, u.Status.State, prev[n-1].State)
		}
		if u.Status.Timestamp.IsZero() {
			h.t.Errorf("task %s: report %q has no timestamp", u.TaskID, u.Status.State)
		}
		h.hist[u.TaskID] = append(prev, u.Status)
	}
	return us
}

func (h *execHarness) last(id string) swarm.TaskStatus {
	if s := h.hist[id]; len(s) > 0 {
		return s[len(s)-1]
	}
	return swarm.TaskStatus{}
}

func (h *execHarness) states(id string) []swarm.TaskState {
	var out []swarm.TaskState
	for _, s := range h.hist[id] {
		out = append(out, s.State)
	}
	return out
}

// waitState polls the reports until task id's last reported state is want.
// It fails at once if the task ends in another final state.
func (h *execHarness) waitState(id string, want swarm.TaskState) swarm.TaskStatus {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		h.drain()
		st := h.last(id)
		if st.State == want {
			return st
		}
		if terminal(st.State) {
			h.t.Fatalf("task %s ended %q (%s / %s), want %q; history %v", id, st.State, st.Message, st.Err, want, h.states(id))
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for task %s to be %q; history %v", id, want, h.states(id))
		}
		time.Sleep(pollEvery)
	}
}

// startCount is how many Starts succeeded on the fake driver.
func startCount(d *fake.Driver) int {
	_, _, n := d.Stats()
	return n
}

// mkTask builds a task of service "svc-id" for node-1, as the managers send it.
func mkTask(id string, slot int, desired swarm.TaskState, env ...string) swarm.Task {
	return swarm.Task{
		ID:           id,
		ServiceID:    "svc-id",
		Slot:         slot,
		NodeID:       "node-1",
		DesiredState: desired,
		Status:       swarm.TaskStatus{State: swarm.TaskStateAssigned, Message: "scheduled"},
		Spec:         swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "fake", Env: env}},
	}
}

func assigned(ts ...swarm.Task) []nodeapi.Assignment {
	out := make([]nodeapi.Assignment, 0, len(ts))
	for _, t := range ts {
		out = append(out, nodeapi.Assignment{Task: t, ServiceName: "web"})
	}
	return out
}

// withDesired returns t as the managers send it once its desired state changed.
func withDesired(t swarm.Task, desired swarm.TaskState) swarm.Task {
	t.DesiredState = desired
	return t
}

// withObserved returns t with the managers' view of its observed state.
func withObserved(t swarm.Task, st swarm.TaskState) swarm.Task {
	t.Status = swarm.TaskStatus{State: st, Message: string(st)}
	return t
}

// gate is a fake.Driver OnStart hook that holds chosen tasks inside Start,
// ignoring their context, as a driver busy in a blocking call does. Only
// the first Start of a task is held.
type gate struct {
	mu      sync.Mutex
	pending map[string]bool
	freed   map[string]bool
	held    map[string]chan struct{}
	entered map[string]chan struct{}
}

func newGate(ids ...string) *gate {
	g := &gate{pending: map[string]bool{}, freed: map[string]bool{}, held: map[string]chan struct{}{}, entered: map[string]chan struct{}{}}
	for _, id := range ids {
		g.pending[id] = true
		g.held[id] = make(chan struct{})
		g.entered[id] = make(chan struct{})
	}
	return g
}

func (g *gate) onStart(s driver.Spec) error {
	g.mu.Lock()
	first := g.pending[s.TaskID]
	delete(g.pending, s.TaskID)
	held, entered := g.held[s.TaskID], g.entered[s.TaskID]
	g.mu.Unlock()
	if !first {
		return nil
	}
	close(entered)
	<-held
	return nil
}

func (g *gate) waitEntered(t *testing.T, id string) {
	t.Helper()
	select {
	case <-g.entered[id]:
	case <-time.After(waitFor):
		t.Fatalf("task %s never reached the driver's Start", id)
	}
}

func (g *gate) release(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.freed[id] {
		g.freed[id] = true
		close(g.held[id])
	}
}

// releaseAll frees every held Start (register it with t.Cleanup after the
// executor, so it runs before the executor's Wait).
func (g *gate) releaseAll() {
	for id := range g.held {
		g.release(id)
	}
}
