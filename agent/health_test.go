package agent

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
)

func fastHealthPoll(e *Executor) { e.HealthPoll = 2 * time.Millisecond }

func newHealthExec(t *testing.T, drv *fake.Driver, db string) *execHarness {
	t.Helper()
	h, err := startExec(t, drv, db, fastHealthPoll)
	if err != nil {
		t.Fatalf("Executor.Start: %v", err)
	}
	return h
}

func checkedTask(id string, slot int) swarm.Task {
	t := mkTask(id, slot, swarm.TaskStateRunning)
	t.Spec.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Second, Retries: 2}
	return t
}

// waitStarted waits until the driver's Start returned for id: from then
// on the executor has decided whether the task waits for its health.
func waitStarted(t *testing.T, h *execHarness, id string) {
	t.Helper()
	eventually(t, "task "+id+" started by its driver", func() bool { _, _, ok := h.e.Handle(id); return ok })
}

func setHealth(t *testing.T, drv *fake.Driver, id string, hs driver.Health) {
	t.Helper()
	if err := drv.SetHealth(id, hs); err != nil {
		t.Fatal(err)
	}
}

func TestExecutorStartingUntilHealthy(t *testing.T) {
	drv := fake.New()
	h := newHealthExec(t, drv, "")
	h.e.Sync(assigned(checkedTask("t1", 1)))
	waitStarted(t, h, "t1")
	if spec, _ := drv.Spec("t1"); spec.Healthcheck == nil || spec.Healthcheck.Test[1] != "true" || spec.Healthcheck.Retries != 2 {
		t.Fatalf("driver got health check %+v, want the spec's", spec.Healthcheck)
	}
	h.drain()
	if st := h.last("t1"); st.State != swarm.TaskStateStarting {
		t.Fatalf("started but not yet healthy: %q, want starting", st.State)
	}
	setHealth(t, drv, "t1", driver.Health{Status: driver.HealthHealthy})
	st := h.waitState("t1", swarm.TaskStateRunning)
	if st.Message != MessageHealthy || st.ContainerStatus == nil || st.ContainerStatus.ContainerID != "t1" {
		t.Errorf("running report %+v, want message %q and the container", st, MessageHealthy)
	}
}

func TestExecutorUnhealthyTaskFailsAndStops(t *testing.T) {
	for _, tc := range []struct {
		name         string
		healthyFirst bool
	}{{"after running", true}, {"while starting", false}} {
		t.Run(tc.name, func(t *testing.T) {
			drv := fake.New()
			h := newHealthExec(t, drv, "")
			h.e.Sync(assigned(checkedTask("t1", 1)))
			waitStarted(t, h, "t1")
			if tc.healthyFirst {
				setHealth(t, drv, "t1", driver.Health{Status: driver.HealthHealthy})
				h.waitState("t1", swarm.TaskStateRunning)
			}
			setHealth(t, drv, "t1", driver.Health{Status: driver.HealthUnhealthy, FailingStreak: 2, Last: "exit status 1: no"})
			st := h.waitState("t1", swarm.TaskStateFailed)
			if want := "task: unhealthy container: the health check failed 2 times in a row (last: exit status 1: no)"; st.Err != want || st.Message != MessageUnhealthy {
				t.Errorf("failed report %+v, want err %q and message %q", st, want, MessageUnhealthy)
			}
			eventually(t, "the unhealthy task stopped", func() bool { running, _, _ := drv.Stats(); return running == 0 })
			h.drain()
			if st := h.last("t1"); st.State != swarm.TaskStateFailed || !strings.Contains(st.Err, "unhealthy") {
				t.Errorf("after the stop: %+v, want the unhealthy failure to stand", st)
			}
		})
	}
}

func TestExecutorNoHealthCheckRunsAtOnce(t *testing.T) {
	drv := fake.New()
	h := newHealthExec(t, drv, "")
	tk := mkTask("t1", 1, swarm.TaskStateRunning)
	tk.Spec.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	h.e.Sync(assigned(tk))
	if st := h.waitState("t1", swarm.TaskStateRunning); st.Message != "started" {
		t.Errorf("message %q, want started", st.Message)
	}
}

// Checks run outside the agent: a restarted agent picks up the health of
// the tasks it re-attaches to.
func TestExecutorHealthAcrossRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tasks.json")
	drv := fake.New()
	a := newHealthExec(t, drv, db)
	a.e.Sync(assigned(checkedTask("starting", 1), checkedTask("healthy", 2)))
	waitStarted(t, a, "starting")
	waitStarted(t, a, "healthy")
	setHealth(t, drv, "healthy", driver.Health{Status: driver.HealthHealthy})
	a.waitState("healthy", swarm.TaskStateRunning)
	a.drain()
	if st := a.last("starting"); st.State != swarm.TaskStateStarting {
		t.Fatalf("task without a healthy result: %q", st.State)
	}
	a.stop()

	// While the agent is down, one turns healthy and the other unhealthy.
	setHealth(t, drv, "starting", driver.Health{Status: driver.HealthHealthy})
	setHealth(t, drv, "healthy", driver.Health{Status: driver.HealthUnhealthy, FailingStreak: 3, Last: "exit status 1"})

	b := newHealthExec(t, drv, db)
	if st := b.waitState("starting", swarm.TaskStateRunning); st.Message != MessageHealthy {
		t.Errorf("re-attached task turned healthy: %+v", st)
	}
	b.waitState("healthy", swarm.TaskStateFailed)
	eventually(t, "the unhealthy task stopped", func() bool { running, _, _ := drv.Stats(); return running == 1 })
}

func TestHealthPollFollowsTheCheck(t *testing.T) {
	e := &Executor{}
	for _, tc := range []struct {
		hc   *container.HealthConfig
		want time.Duration
	}{
		{nil, time.Second}, // the image's own check: unknown interval
		{&container.HealthConfig{Test: []string{"CMD", "x"}}, time.Second},
		{&container.HealthConfig{Interval: 2 * time.Second}, 500 * time.Millisecond},
		{&container.HealthConfig{Interval: 2 * time.Second, StartInterval: 400 * time.Millisecond}, 100 * time.Millisecond},
		{&container.HealthConfig{Interval: time.Millisecond}, 50 * time.Millisecond},
	} {
		tk := mkTask("t", 1, swarm.TaskStateRunning)
		tk.Spec.ContainerSpec.Healthcheck = tc.hc
		if got := e.healthPoll(tk); got != tc.want {
			t.Errorf("%+v: poll every %s, want %s", tc.hc, got, tc.want)
		}
	}
}

// An agent that restarts while it stops an unhealthy task stops it again:
// nobody else would (the task is failed, so the managers ask nothing).
func TestExecutorStopsUnhealthyTaskAfterRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tasks.json")
	drv := fake.New()
	var mu sync.Mutex
	stops := 0
	drv.OnStop = func(driver.Handle) { mu.Lock(); stops++; mu.Unlock() }
	stopCount := func() int { mu.Lock(); defer mu.Unlock(); return stops }
	a := newHealthExec(t, drv, db)
	tk := checkedTask("t1", 1)
	tk.Spec.ContainerSpec.Env = []string{"FAKE_IGNORE_TERM=1"}
	long := time.Hour
	tk.Spec.ContainerSpec.StopGracePeriod = &long
	a.e.Sync(assigned(tk))
	waitStarted(t, a, "t1")
	setHealth(t, drv, "t1", driver.Health{Status: driver.HealthUnhealthy, FailingStreak: 2})
	a.waitState("t1", swarm.TaskStateFailed)
	eventually(t, "the first stop", func() bool { return stopCount() == 1 })
	a.stop() // the stop is cut short: the task still runs

	if running, _, _ := drv.Stats(); running != 1 {
		t.Fatalf("%d tasks running after the interrupted stop, want 1", running)
	}
	b := newHealthExec(t, drv, db)
	eventually(t, "the restarted agent stopping the unhealthy task", func() bool { return stopCount() == 2 })
	b.drain()
	if st, ok := b.hist["t1"]; ok {
		t.Errorf("the failed task was reported again: %+v", st)
	}
}
