package agent

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
)

func TestExecutorRunsTaskWithItsSpec(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")

	grace := 3 * time.Second
	tk := mkTask("t1", 3, swarm.TaskStateRunning,
		"GREETING=hello",
		"SLOT={{.Task.Slot}}",
		"HOST={{.Node.Hostname}}",
		"NAME={{.Service.Name}}-{{.Task.Slot}}",
		"TASK={{.Task.Name}}",
		"BAD={{.Nope}}", // a template that fails is used as written
	)
	cs := tk.Spec.ContainerSpec
	cs.Command = []string{"/bin/app"}
	cs.Args = []string{"--port", "80"}
	cs.Labels = map[string]string{"tier": "front", LabelNetwork: "host"}
	cs.Hostname = "{{.Service.Name}}-{{.Task.Slot}}"
	cs.Dir = "/srv"
	cs.User = "nobody"
	cs.StopGracePeriod = &grace
	tk.Spec.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: 500_000_000, MemoryBytes: 64 << 20}}

	h.e.Sync(assigned(tk))
	st := h.waitState("t1", swarm.TaskStateRunning)
	if st.ContainerStatus == nil || st.ContainerStatus.ContainerID != "t1" {
		t.Fatalf("running report without the container: %+v", st.ContainerStatus)
	}
	if st.Message != "started" || st.Err != "" {
		t.Errorf("running report: message %q err %q", st.Message, st.Err)
	}
	for _, s := range h.states("t1") {
		if !slices.Contains([]swarm.TaskState{swarm.TaskStateAccepted, swarm.TaskStateStarting, swarm.TaskStateRunning}, s) {
			t.Errorf("unexpected state %q on the way to running: %v", s, h.states("t1"))
		}
	}
	if n := startCount(drv); n != 1 {
		t.Fatalf("driver started %d tasks, want 1", n)
	}

	got, ok := drv.Spec("t1")
	if !ok {
		t.Fatal("the driver holds no task t1")
	}
	want := driver.Spec{
		TaskID: "t1", ServiceID: "svc-id", ServiceName: "web", NodeID: "node-1", Slot: 3,
		Image: "fake", Command: []string{"/bin/app"}, Args: []string{"--port", "80"},
		Dir: "/srv", User: "nobody", Hostname: "web-3",
		NanoCPUs: 500_000_000, MemoryBytes: 64 << 20, StopGracePeriod: grace, Network: "host",
	}
	if got.TaskID != want.TaskID || got.ServiceID != want.ServiceID || got.ServiceName != want.ServiceName ||
		got.NodeID != want.NodeID || got.Slot != want.Slot || got.Image != want.Image ||
		!slices.Equal(got.Command, want.Command) || !slices.Equal(got.Args, want.Args) ||
		got.Dir != want.Dir || got.User != want.User || got.Hostname != want.Hostname ||
		got.NanoCPUs != want.NanoCPUs || got.MemoryBytes != want.MemoryBytes || got.StopGracePeriod != want.StopGracePeriod ||
		got.Network != want.Network {
		t.Errorf("spec given to the driver:\n got %+v\nwant %+v", got, want)
	}
	if got.Labels["tier"] != "front" {
		t.Errorf("labels %v", got.Labels)
	}
	for _, kv := range []string{
		"FLOTILLA_SERVICE_ID=svc-id", "FLOTILLA_SERVICE_NAME=web", "FLOTILLA_NODE_ID=node-1",
		"FLOTILLA_NODE_HOSTNAME=host-a", "FLOTILLA_TASK_ID=t1", "FLOTILLA_TASK_NAME=web.3.t1", "FLOTILLA_TASK_SLOT=3",
		"GREETING=hello", "SLOT=3", "HOST=host-a", "NAME=web-3", "TASK=web.3.t1", "BAD={{.Nope}}",
	} {
		if !slices.Contains(got.Env, kv) {
			t.Errorf("env lacks %q: %q", kv, got.Env)
		}
	}
	// The task's own environment comes after FLOTILLA_*, so it can override.
	if i, j := slices.Index(got.Env, "FLOTILLA_TASK_SLOT=3"), slices.Index(got.Env, "GREETING=hello"); i > j {
		t.Errorf("task env before FLOTILLA_* env: %q", got.Env)
	}

	if d, hd, ok := h.e.Handle("t1"); !ok || d != drv || hd.ID != "t1" || hd.Driver != fake.Name {
		t.Errorf("Handle(t1) = %v %+v %v", d, hd, ok)
	}

	// The same set again, now with the managers seeing it running: nothing
	// new starts and nothing is reported.
	h.e.Sync(assigned(withObserved(tk, swarm.TaskStateRunning)))
	if n := startCount(drv); n != 1 {
		t.Fatalf("driver started %d tasks after a repeated Sync, want 1", n)
	}
	if us := h.drain(); len(us) != 0 {
		t.Errorf("reports after a repeated Sync: %+v", us)
	}
	if running, _, _ := drv.Stats(); running != 1 {
		t.Errorf("%d tasks running, want 1", running)
	}
}

func TestExecutorGlobalTaskTemplate(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	tk := mkTask("g1", 0, swarm.TaskStateRunning, "SLOT=[{{.Task.Slot}}]", "NODE={{.Node.ID}}")
	h.e.Sync(assigned(tk))
	h.waitState("g1", swarm.TaskStateRunning)
	got, _ := drv.Spec("g1")
	for _, kv := range []string{"SLOT=[]", "NODE=node-1", "FLOTILLA_TASK_SLOT=", "FLOTILLA_TASK_NAME=web.node-1.g1"} {
		if !slices.Contains(got.Env, kv) {
			t.Errorf("env lacks %q: %q", kv, got.Env)
		}
	}
}

// With a Start held in the driver, the report in between is "starting".
func TestExecutorReportsStartingThenRunning(t *testing.T) {
	drv := fake.New()
	g := newGate("t1")
	drv.OnStart = g.onStart
	h := newExec(t, drv, "")
	t.Cleanup(g.releaseAll)

	h.e.Sync(assigned(mkTask("t1", 1, swarm.TaskStateRunning)))
	h.drain()
	if s := h.last("t1").State; s != swarm.TaskStateAccepted && s != swarm.TaskStateStarting {
		t.Fatalf("first report %q, want accepted or starting", s)
	}
	g.waitEntered(t, "t1")
	h.drain()
	if s := h.last("t1"); s.State != swarm.TaskStateStarting || s.ContainerStatus != nil {
		t.Fatalf("report while the driver starts the task: %+v", s)
	}
	g.release("t1")
	h.waitState("t1", swarm.TaskStateRunning)
}

func TestExecutorTaskEnds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      []string
		exit     *int // end the running task with drv.Exit
		state    swarm.TaskState
		code     int
		errHas   string
		errIs    string // the whole error, when set
		noStarts bool
	}{
		{name: "exits 0 by itself", env: []string{"FAKE_EXIT_AFTER=20ms"}, state: swarm.TaskStateComplete},
		{name: "exits 3 by itself", env: []string{"FAKE_EXIT_CODE=3"}, state: swarm.TaskStateFailed, code: 3, errHas: "(3)"},
		{name: "ends 0", exit: new(0), state: swarm.TaskStateComplete},
		{name: "ends 3", exit: new(3), state: swarm.TaskStateFailed, code: 3, errIs: "task: non-zero exit (3)"}, // dockerd's words
		{name: "OOM", env: []string{"FAKE_OOM=1"}, state: swarm.TaskStateFailed, code: 137, errHas: "OOM"},
		{name: "invalid", env: []string{"FAKE_INVALID=1"}, state: swarm.TaskStateRejected, errHas: "FAKE_INVALID", noStarts: true},
		{name: "bad fake setting", env: []string{"FAKE_EXIT_AFTER=soon"}, state: swarm.TaskStateRejected, errHas: "FAKE_EXIT_AFTER", noStarts: true},
		{name: "start fails", env: []string{"FAKE_FAIL_START=1"}, state: swarm.TaskStateFailed, errHas: "FAKE_FAIL_START", noStarts: true},
		{name: "start fails with a message", env: []string{"FAKE_FAIL_START=no space left"}, state: swarm.TaskStateFailed, errHas: "no space left", noStarts: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drv := fake.New()
			h := newExec(t, drv, "")
			h.e.Sync(assigned(mkTask("t1", 1, swarm.TaskStateRunning, tc.env...)))
			if tc.exit != nil {
				h.waitState("t1", swarm.TaskStateRunning)
				if err := drv.Exit("t1", *tc.exit); err != nil {
					t.Fatal(err)
				}
			}
			st := h.waitState("t1", tc.state)
			if tc.errHas != "" && !strings.Contains(st.Err, tc.errHas) {
				t.Errorf("err %q, want it to contain %q", st.Err, tc.errHas)
			}
			if tc.errIs != "" && st.Err != tc.errIs {
				t.Errorf("err %q, want %q", st.Err, tc.errIs)
			}
			if tc.errHas == "" && tc.errIs == "" && st.Err != "" {
				t.Errorf("err %q, want none", st.Err)
			}
			if tc.noStarts {
				if n := startCount(drv); n != 0 {
					t.Errorf("%d tasks started", n)
				}
				return
			}
			if st.ContainerStatus == nil || st.ContainerStatus.ExitCode != tc.code || st.ContainerStatus.ContainerID != "t1" {
				t.Errorf("container status %+v, want exit code %d", st.ContainerStatus, tc.code)
			}
			if !slices.Contains(h.states("t1"), swarm.TaskStateRunning) && tc.exit != nil {
				t.Errorf("never reported running: %v", h.states("t1"))
			}
		})
	}
}

func TestExecutorUnknownDriverRejects(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	tk := mkTask("t1", 1, swarm.TaskStateRunning)
	tk.Spec.ContainerSpec.Labels = map[string]string{LabelDriver: "firecracker"}
	h.e.Sync(assigned(tk))
	st := h.waitState("t1", swarm.TaskStateRejected)
	if !strings.Contains(st.Err, "firecracker") {
		t.Errorf("err %q does not name the driver", st.Err)
	}
	if n := startCount(drv); n != 0 {
		t.Errorf("%d tasks started", n)
	}
	if _, _, ok := h.e.Handle("t1"); ok {
		t.Error("a rejected task has a handle")
	}

	// The label chooses among the node's drivers.
	tk2 := mkTask("t2", 2, swarm.TaskStateRunning)
	tk2.Spec.ContainerSpec.Labels = map[string]string{LabelDriver: fake.Name}
	h.e.Sync(assigned(tk, tk2))
	h.waitState("t2", swarm.TaskStateRunning)

	// Without a label and without a default driver: rejected too.
	h.e.mu.Lock()
	h.e.Default = ""
	h.e.mu.Unlock()
	h.e.Sync(assigned(tk, tk2, mkTask("t3", 3, swarm.TaskStateRunning)))
	h.waitState("t3", swarm.TaskStateRejected)
}

func TestExecutorShutdownStopsTask(t *testing.T) {
	drv := fake.New()
	var mu sync.Mutex
	var stops []driver.Handle
	drv.OnStop = func(hd driver.Handle) { mu.Lock(); stops = append(stops, hd); mu.Unlock() }
	h := newExec(t, drv, "")

	grace := time.Second
	tk := mkTask("t1", 1, swarm.TaskStateRunning, "FAKE_STOP_DELAY=10ms")
	tk.Spec.ContainerSpec.StopGracePeriod = &grace
	other := mkTask("t2", 2, swarm.TaskStateRunning)
	h.e.Sync(assigned(tk, other))
	h.waitState("t1", swarm.TaskStateRunning)
	h.waitState("t2", swarm.TaskStateRunning)

	h.e.Sync(assigned(withObserved(withDesired(tk, swarm.TaskStateShutdown), swarm.TaskStateRunning), withObserved(other, swarm.TaskStateRunning)))
	st := h.waitState("t1", swarm.TaskStateShutdown)
	if st.ContainerStatus == nil || st.ContainerStatus.ExitCode != 143 {
		t.Errorf("container status %+v, want the SIGTERM exit code", st.ContainerStatus)
	}
	if st.Err != "" {
		t.Errorf("a shutdown carries err %q", st.Err)
	}
	mu.Lock()
	if len(stops) != 1 || stops[0].ID != "t1" {
		t.Errorf("driver Stop calls %+v, want one for t1", stops)
	}
	mu.Unlock()
	if running, existing, _ := drv.Stats(); running != 1 || existing != 2 {
		t.Errorf("driver: %d running, %d existing; want t2 running and t1 kept until removed", running, existing)
	}
	if s := h.last("t2").State; s != swarm.TaskStateRunning {
		t.Errorf("t2 is %q", s)
	}

	// The managers keep sending the stopped task: no second Stop.
	h.e.Sync(assigned(withObserved(withDesired(tk, swarm.TaskStateShutdown), swarm.TaskStateShutdown), withObserved(other, swarm.TaskStateRunning)))
	mu.Lock()
	if len(stops) != 1 {
		t.Errorf("driver Stop calls %+v after a repeated Sync", stops)
	}
	mu.Unlock()
}

// A task whose service was removed (desired state remove) is stopped
// with its grace period and removed at once, before the managers have
// heard of the stop and dropped it; a task only shut down is kept.
func TestExecutorDesiredRemoveRemovesOnceStopped(t *testing.T) {
	drv := fake.New()
	var mu sync.Mutex
	var stops, removed []string
	drv.OnStop = func(hd driver.Handle) { mu.Lock(); stops = append(stops, hd.ID); mu.Unlock() }
	drv.OnRemove = func(hd driver.Handle) { mu.Lock(); removed = append(removed, hd.ID); mu.Unlock() }
	h := newExec(t, drv, "")

	t1, t2 := mkTask("t1", 1, swarm.TaskStateRunning), mkTask("t2", 2, swarm.TaskStateRunning)
	h.e.Sync(assigned(t1, t2))
	h.waitState("t1", swarm.TaskStateRunning)
	h.waitState("t2", swarm.TaskStateRunning)

	h.e.Sync(assigned(withObserved(withDesired(t1, swarm.TaskStateRemove), swarm.TaskStateRunning),
		withObserved(withDesired(t2, swarm.TaskStateShutdown), swarm.TaskStateRunning)))
	h.waitState("t1", swarm.TaskStateShutdown)
	h.waitState("t2", swarm.TaskStateShutdown)
	eventually(t, "t1 removed while still assigned", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(removed, []string{"t1"})
	})
	mu.Lock()
	if slices.Sort(stops); !slices.Equal(stops, []string{"t1", "t2"}) {
		t.Errorf("driver Stop calls %v, want t1 and t2 (gracefully, before any removal)", stops)
	}
	mu.Unlock()
	if _, existing, _ := drv.Stats(); existing != 1 {
		t.Errorf("driver: %d existing, want t2 kept until the managers drop it", existing)
	}
}

func TestExecutorShutdownOfUnstartedTask(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	// Desired shutdown before this node ever started it.
	h.e.Sync(assigned(withDesired(mkTask("t1", 1, swarm.TaskStateRunning), swarm.TaskStateShutdown)))
	st := h.waitState("t1", swarm.TaskStateShutdown)
	if st.ContainerStatus != nil {
		t.Errorf("container status %+v for a task never started", st.ContainerStatus)
	}
	// A task the managers already see as final is left alone.
	h.e.Sync(assigned(
		withObserved(withDesired(mkTask("t1", 1, swarm.TaskStateRunning), swarm.TaskStateShutdown), swarm.TaskStateShutdown),
		withObserved(mkTask("t2", 2, swarm.TaskStateRunning), swarm.TaskStateFailed),
	))
	if us := h.drain(); len(us) != 0 {
		t.Errorf("reports %+v", us)
	}
	if n := startCount(drv); n != 0 {
		t.Errorf("%d tasks started", n)
	}
}

func TestExecutorRemovesDroppedTask(t *testing.T) {
	drv := fake.New()
	var mu sync.Mutex
	var removed []string
	drv.OnRemove = func(hd driver.Handle) { mu.Lock(); removed = append(removed, hd.ID); mu.Unlock() }
	h := newExec(t, drv, "")

	t1, t2 := mkTask("t1", 1, swarm.TaskStateRunning), mkTask("t2", 2, swarm.TaskStateRunning, "FAKE_EXIT_CODE=0")
	h.e.Sync(assigned(t1, t2))
	h.waitState("t1", swarm.TaskStateRunning)
	h.waitState("t2", swarm.TaskStateComplete)

	// t2 ended and the managers dropped it: the driver removes it; t1 stays.
	h.e.Sync(assigned(withObserved(t1, swarm.TaskStateRunning)))
	eventually(t, "t2 removed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(removed, []string{"t2"})
	})
	if _, _, ok := h.e.Handle("t2"); ok {
		t.Error("the executor still knows the dropped task")
	}
	if running, existing, _ := drv.Stats(); running != 1 || existing != 1 {
		t.Errorf("driver: %d running, %d existing", running, existing)
	}

	// A running task dropped from the set is removed too (killed first).
	h.e.Sync(nil)
	eventually(t, "t1 removed", func() bool {
		_, existing, _ := drv.Stats()
		return existing == 0
	})
	mu.Lock()
	if !slices.Equal(removed, []string{"t2", "t1"}) {
		t.Errorf("removed %v", removed)
	}
	mu.Unlock()
}

// waitFinal polls until task id reaches a final state and returns it.
func (h *execHarness) waitFinal(id string) swarm.TaskStatus {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		h.drain()
		if st := h.last(id); terminal(st.State) {
			return st
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for task %s to end; history %v", id, h.states(id))
		}
		time.Sleep(pollEvery)
	}
}

// A task shut down while the driver is still starting it must end
// "shutdown" — it was stopped, it did not fail — and never be reported
// running afterwards.
func TestExecutorShutdownWhileStarting(t *testing.T) {
	for _, tc := range []struct{ name, env string }{
		{"hang", "FAKE_HANG_START=1"},
		{"delay", "FAKE_START_DELAY=5s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drv := fake.New()
			h := newExec(t, drv, "")
			tk := mkTask("t1", 1, swarm.TaskStateRunning, tc.env)
			h.e.Sync(assigned(tk))
			h.waitState("t1", swarm.TaskStateStarting)
			h.e.Sync(assigned(withObserved(withDesired(tk, swarm.TaskStateShutdown), swarm.TaskStateStarting)))
			st := h.waitFinal("t1")
			if st.State != swarm.TaskStateShutdown {
				t.Errorf("task shut down while starting ended %q (%s), want shutdown; history %v", st.State, st.Err, h.states("t1"))
			}
			if slices.Contains(h.states("t1"), swarm.TaskStateRunning) {
				t.Errorf("reported running after its shutdown: %v", h.states("t1"))
			}
		})
	}
}

// The driver's Start may finish although the executor cancelled it (a
// blocking engine call that ignores its context). The task must still end
// shutdown and not keep running.
func TestExecutorShutdownWhileStartingStartSucceeds(t *testing.T) {
	drv := fake.New()
	g := newGate("t1")
	drv.OnStart = g.onStart
	h := newExec(t, drv, "")
	t.Cleanup(g.releaseAll)

	tk := mkTask("t1", 1, swarm.TaskStateRunning)
	h.e.Sync(assigned(tk))
	g.waitEntered(t, "t1")
	h.waitState("t1", swarm.TaskStateStarting)
	h.e.Sync(assigned(withObserved(withDesired(tk, swarm.TaskStateShutdown), swarm.TaskStateStarting)))
	g.release("t1")
	st := h.waitFinal("t1")
	if st.State != swarm.TaskStateShutdown {
		t.Errorf("ended %q, want shutdown; history %v", st.State, h.states("t1"))
	}
	eventually(t, "the started task to be stopped", func() bool {
		running, _, _ := drv.Stats()
		return running == 0
	})
}

// Same gate, but the managers drop the task instead: what the driver
// created afterwards must not be left behind.
func TestExecutorDroppedWhileStartingLeavesNothing(t *testing.T) {
	drv := fake.New()
	g := newGate("t1")
	drv.OnStart = g.onStart
	h := newExec(t, drv, "")
	t.Cleanup(g.releaseAll)

	h.e.Sync(assigned(mkTask("t1", 1, swarm.TaskStateRunning)))
	g.waitEntered(t, "t1")
	h.e.Sync(nil)
	g.release("t1")
	eventually(t, "the held Start to finish", func() bool { return startCount(drv) == 1 })
	eventually(t, "the dropped task to be gone from the driver", func() bool {
		_, existing, _ := drv.Stats()
		return existing == 0
	})
}
