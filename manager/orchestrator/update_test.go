package orchestrator

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// ofImage returns the wanted tasks running the given image.
func (h *harness) ofImage(svc, ref string) []*state.Task {
	var out []*state.Task
	for _, t := range h.desired(svc) {
		if t.Spec.ContainerSpec.Image == ref {
			out = append(out, t)
		}
	}
	return out
}

func (h *harness) holdAll(on bool) {
	for _, n := range h.store.Nodes() {
		h.held[n.ID] = on
	}
}

// expectProgress checks how many wanted tasks run the new image.
func (h *harness) expectProgress(svc, ref string, n int) {
	h.t.Helper()
	if got := len(h.ofImage(svc, ref)); got != n {
		h.t.Fatalf("want %d tasks of %s, got %d\n%s", n, ref, got, h.dump(svc))
	}
}

func failImage(ref string) func(*state.Task) swarm.TaskState {
	return func(t *state.Task) swarm.TaskState {
		if t.Spec.ContainerSpec.Image == ref {
			return swarm.TaskStateFailed
		}
		return swarm.TaskStateRunning
	}
}

func TestRollingUpdateStopFirst(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, 10*time.Second, "", swarm.UpdateOrderStopFirst)))
	h.converge()

	h.update(svc, image("app:2"))
	h.holdAll(true)
	h.pass()
	var stopping []*state.Task
	for _, tk := range h.tasks(svc) {
		if tk.DesiredState == swarm.TaskStateShutdown {
			stopping = append(stopping, tk)
		}
	}
	if len(stopping) != 1 || stopping[0].ShutdownReason != state.ReasonUpdate {
		t.Fatalf("parallelism 1: want one task asked to stop for the update\n%s", h.dump(svc))
	}
	if n := len(h.ofImage(svc, "app:2")); n != 0 {
		t.Fatalf("stop-first: a new task exists before the old one stopped\n%s", h.dump(svc))
	}
	h.holdAll(false)
	h.converge()
	h.expectProgress(svc, "app:2", 1)
	h.expectProgress(svc, "app:1", 2)
	if n := bySlot(h.ofImage(svc, "app:2")); len(n[stopping[0].Slot]) != 1 {
		t.Fatalf("the new task is not in the stopped task's slot\n%s", h.dump(svc))
	}
	h.expectUpdateState(svc, swarm.UpdateStateUpdating)

	// The next batch waits for the monitor window.
	h.advance(9 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 1)
	h.advance(time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 2)
	h.advance(10 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 3)
	h.expectUpdateState(svc, swarm.UpdateStateUpdating) // the last one is still monitored
	h.advance(10 * time.Second)
	h.converge()
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectReplicas(svc, 3)
	s := h.service(svc)
	if s.UpdateStatus.CompletedAt == nil || s.UpdateStatus.Message != "update completed" {
		t.Fatalf("completion status: %+v", s.UpdateStatus)
	}
	for _, tk := range h.running(svc) {
		if tk.SpecVersion != s.SpecVersion {
			t.Errorf("task of spec version %d after the update to %d", tk.SpecVersion, s.SpecVersion)
		}
	}
	// Each slot has its old task (stopped) and its new one, nothing else.
	for slot, ts := range bySlot(h.tasks(svc)) {
		if len(ts) != 2 {
			t.Errorf("slot %d has %d tasks\n%s", slot, len(ts), h.dump(svc))
		}
	}
}

func TestRollingUpdateParallelism(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 5, updateCfg(2, 0, 5*time.Second, "", "")))
	h.converge()
	h.update(svc, image("app:2"))
	h.converge()
	h.expectProgress(svc, "app:2", 2)
	h.advance(5 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 4)
	h.advance(5 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 5)
	h.advance(5 * time.Second)
	h.converge()
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectReplicas(svc, 5)
}

func TestRollingUpdateParallelismZeroIsAllAtOnce(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 4, updateCfg(0, 0, 5*time.Second, "", "")))
	h.converge()
	h.update(svc, image("app:2"))
	h.converge()
	h.expectProgress(svc, "app:2", 4)
	h.advance(5 * time.Second)
	h.converge()
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
}

func TestRollingUpdateDelay(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 30*time.Second, time.Second, "", "")))
	h.converge()
	h.update(svc, image("app:2"))
	h.converge()
	h.expectProgress(svc, "app:2", 1)
	// Settled after 1s, but the next batch waits for the delay (counted
	// from the start of the previous batch).
	h.advance(time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 1)
	h.advance(28 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 1)
	h.advance(time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 2)
	h.advance(30 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 3)
	h.advance(time.Second)
	h.converge()
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
}

func TestRollingUpdateStartFirst(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 2, updateCfg(1, 0, 5*time.Second, "", swarm.UpdateOrderStartFirst)))
	h.converge()
	h.update(svc, image("app:2"))
	h.holdAll(true)
	h.pass()
	fresh := h.ofImage(svc, "app:2")
	if len(fresh) != 1 || fresh[0].Status.State != swarm.TaskStateAssigned {
		t.Fatalf("start-first: want one new task placed\n%s", h.dump(svc))
	}
	slot := fresh[0].Slot
	for _, tk := range h.tasks(svc) {
		if tk.DesiredState != swarm.TaskStateRunning {
			t.Fatalf("start-first: a task was stopped before its replacement runs\n%s", h.dump(svc))
		}
	}
	if n := len(bySlot(h.running(svc))[slot]); n != 1 {
		t.Fatalf("the old task of slot %d should still run\n%s", slot, h.dump(svc))
	}
	// The new task runs: only now the old one goes.
	h.holdAll(false)
	h.agents()
	h.holdAll(true)
	h.pass()
	var old *state.Task
	for _, tk := range bySlot(h.tasks(svc))[slot] {
		if tk.Spec.ContainerSpec.Image == "app:1" {
			old = tk
		}
	}
	if old == nil || old.DesiredState != swarm.TaskStateShutdown || old.ShutdownReason != state.ReasonUpdate {
		t.Fatalf("once the new task runs the old one should be asked to stop\n%s", h.dump(svc))
	}
	h.holdAll(false)
	h.converge()
	h.expectOneRunnerPerSlot(svc)
	h.expectProgress(svc, "app:2", 1)
	h.advance(5 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 2)
	h.advance(5 * time.Second)
	h.converge()
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectReplicas(svc, 2)
}

func TestRollingUpdateFailurePause(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, 10*time.Second, swarm.UpdateFailureActionPause, "")))
	h.converge()
	h.onStart = failImage("app:2")
	h.update(svc, image("app:2"))
	h.converge()
	h.expectUpdateState(svc, swarm.UpdateStatePaused)
	if msg := h.service(svc).UpdateStatus.Message; !strings.Contains(msg, "update paused due to failure") {
		t.Fatalf("pause message %q", msg)
	}
	h.runFor(time.Minute, 5*time.Second)
	h.expectUpdateState(svc, swarm.UpdateStatePaused)
	if n := len(h.ofImage(svc, "app:1")); n != 2 {
		t.Fatalf("a paused update went on: %d old tasks left\n%s", n, h.dump(svc))
	}
	// The user fixes the image: the update resumes and completes.
	h.onStart = nil
	h.update(svc, image("app:3"))
	h.runFor(time.Minute, 5*time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectProgress(svc, "app:3", 3)
	h.expectReplicas(svc, 3)
}

func TestRollingUpdateFailureContinue(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, 5*time.Second, swarm.UpdateFailureActionContinue, ""),
		restart(swarm.RestartPolicyConditionAny, time.Second, 0, 0)))
	h.converge()
	failedOnce := false
	h.onStart = func(tk *state.Task) swarm.TaskState {
		if tk.Spec.ContainerSpec.Image == "app:2" && !failedOnce {
			failedOnce = true
			return swarm.TaskStateFailed
		}
		return swarm.TaskStateRunning
	}
	h.update(svc, image("app:2"))
	h.runFor(time.Minute, time.Second)
	if !failedOnce {
		t.Fatal("no task failed")
	}
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectProgress(svc, "app:2", 3)
	h.expectReplicas(svc, 3)
}

func TestRollingUpdateFailureRollback(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, 5*time.Second, swarm.UpdateFailureActionRollback, "")))
	h.converge()
	h.onStart = failImage("app:2")
	h.update(svc, image("app:2"))
	h.converge()
	s := h.service(svc)
	h.expectUpdateState(svc, swarm.UpdateStateRollbackStarted)
	if s.Spec.TaskTemplate.ContainerSpec.Image != "app:1" || s.PreviousSpec == nil || s.PreviousSpec.TaskTemplate.ContainerSpec.Image != "app:2" {
		t.Fatalf("rollback: spec %q, previous %+v", s.Spec.TaskTemplate.ContainerSpec.Image, s.PreviousSpec)
	}
	// The rollback makes the old spec current again under its old
	// version, so the tasks the update never reached are current as they are.
	if s.SpecVersion != 1 || s.PreviousSpecVersion != 2 {
		t.Fatalf("rollback should restore spec version 1 (previous 2), got %d (previous %d)", s.SpecVersion, s.PreviousSpecVersion)
	}
	if !strings.Contains(s.UpdateStatus.Message, "rolled back") {
		t.Fatalf("rollback message %q", s.UpdateStatus.Message)
	}
	h.runFor(time.Minute, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateRollbackCompleted)
	h.expectReplicas(svc, 3)
	h.expectProgress(svc, "app:1", 3)
	if m := h.service(svc).UpdateStatus.Message; m != "rollback completed" {
		t.Fatalf("message %q", m)
	}
}

func TestRollbackLeavesUntouchedTasksAlone(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, 5*time.Second, swarm.UpdateFailureActionRollback, "")))
	h.converge()
	before := map[string]bool{}
	for _, tk := range h.running(svc) {
		before[tk.ID] = true
	}
	h.onStart = failImage("app:2")
	h.update(svc, image("app:2"))
	h.runFor(time.Minute, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateRollbackCompleted)
	holds(t, "rollback bumps SpecVersion and the updater treats every task of another SpecVersion as stale, so a rollback also replaces the tasks the failed update never touched (docker rolls back only the tasks whose spec differs)", func(r *recorder) {
		kept := 0
		for _, tk := range h.running(svc) {
			if before[tk.ID] {
				kept++
			}
		}
		if kept != 2 {
			r.Errorf("the update replaced 1 task of 3; after the rollback %d of the 2 untouched tasks still run\n%s", kept, h.dump(svc))
		}
	})
}

func TestRollbackFailurePausesRollback(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 2, updateCfg(1, 0, 5*time.Second, swarm.UpdateFailureActionRollback, "")))
	h.converge()
	// From now on nothing starts: neither the new image nor the old one.
	h.onStart = func(*state.Task) swarm.TaskState { return swarm.TaskStateFailed }
	h.update(svc, image("app:2"))
	h.runFor(10*time.Second, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateRollbackPaused)
}

func TestUpdateWaitsForEmptySlotsToRefill(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, time.Second, "", ""),
		restart(swarm.RestartPolicyConditionAny, 30*time.Second, 0, 0)))
	h.converge()
	victim := h.running(svc)[0]
	h.exit(victim.ID, swarm.TaskStateFailed) // its slot waits 30s for a restart
	h.converge()
	h.update(svc, image("app:2"))
	for range 60 {
		h.advance(time.Second)
		h.converge()
		// Never "completed" with a slot that does not run the new spec.
		if s := h.service(svc); s.UpdateStatus.State == swarm.UpdateStateCompleted && len(h.ofImage(svc, "app:2")) != 3 {
			t.Fatalf("update completed while slot %d is empty\n%s", victim.Slot, h.dump(svc))
		}
	}
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectReplicas(svc, 3)
	h.expectProgress(svc, "app:2", 3)
}

func TestGlobalRollingUpdate(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(globalSpec("agent", updateCfg(1, 0, 2*time.Second, "", "")))
	h.converge()
	h.update(svc, image("app:2"))
	h.converge()
	first := len(h.ofImage(svc, "app:2"))
	h.runFor(10*time.Second, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectProgress(svc, "app:2", 3)
	h.expectGlobalOn(svc, "n1", "n2", "n3")
	holds(t, "global update: a node whose old task has stopped but whose new task is not yet created counts neither as stale nor in flight (only replicated empty slots are counted, via inSlots), so in the pass that creates its replacement the updater starts another batch: parallelism is exceeded and the monitor window skipped", func(r *recorder) {
		if first != 1 {
			r.Errorf("parallelism 1: the first batch updated %d nodes at once", first)
		}
	})
}

func TestLeaderChangeMidUpdate(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 4, updateCfg(1, 0, 5*time.Second, "", "")))
	h.converge()
	h.update(svc, image("app:2"))
	h.converge()
	h.advance(5 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 2)

	// Mid-batch: the third task is asked to stop, then the leader changes
	// before its replacement exists.
	h.advance(5 * time.Second)
	h.holdAll(true)
	h.pass()
	h.expectProgress(svc, "app:1", 1)
	h.failover()
	h.holdAll(false)
	h.converge()
	h.expectProgress(svc, "app:2", 3)
	h.runFor(20*time.Second, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectReplicas(svc, 4)
	h.expectProgress(svc, "app:2", 4)
	for slot, ts := range bySlot(h.tasks(svc)) {
		if len(ts) != 2 {
			t.Errorf("slot %d: %d tasks (want its old and its new one: the failover restarted something)\n%s", slot, len(ts), h.dump(svc))
		}
	}
}

func TestLeaderChangeDoesNotRestartHealthyTasks(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	web := h.create(replicatedSpec("web", 5))
	agent := h.create(globalSpec("agent"))
	h.converge()
	before := h.store.Index()
	h.failover()
	h.advance(time.Minute)
	h.converge()
	if h.store.Index() != before {
		t.Fatalf("a new leader wrote to a settled cluster\n%s", h.dumpAll())
	}
	h.expectReplicas(web, 5)
	h.expectGlobalOn(agent, "n1", "n2", "n3")
}

func TestLeaderChangeKeepsUpdateDelay(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, time.Minute, time.Second, "", "")))
	h.converge()
	h.update(svc, image("app:2"))
	h.converge()
	h.advance(2 * time.Second)
	h.converge()
	h.expectProgress(svc, "app:2", 1)
	h.failover()
	h.converge()
	if n := len(h.ofImage(svc, "app:2")); n != 1 {
		t.Errorf("2s into a 1m update delay, the new leader started the next batch (%d new tasks)", n)
	}
	// And once the delay has passed, the new leader goes on.
	h.runFor(2*time.Minute, time.Second)
	h.expectProgress(svc, "app:2", 3)
}

func TestUpdateMonitorWithWorkerClockBehind(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, 30*time.Second, "", "")))
	h.converge()
	h.skew = -time.Hour // workers' clocks an hour behind the leader's
	h.update(svc, image("app:2"))
	h.converge()
	holds(t, "the update monitor window is measured from the worker-stamped TaskStatus.Timestamp: with a worker clock behind the leader's, new tasks count as settled at once and the whole update runs without monitoring", func(r *recorder) {
		if n := len(h.ofImage(svc, "app:2")); n != 1 {
			r.Errorf("parallelism 1, monitor 30s, no time passed: %d tasks already updated\n%s", n, h.dump(svc))
		}
	})
}

func TestStartFirstFailureKeepsOldTask(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 2, updateCfg(1, 0, 5*time.Second, swarm.UpdateFailureActionPause, swarm.UpdateOrderStartFirst)))
	h.converge()
	h.onStart = failImage("app:2")
	h.update(svc, image("app:2"))
	h.runFor(time.Minute, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStatePaused)
	// Start-first: the new task never ran, so the old ones never stopped.
	h.expectReplicas(svc, 2)
	h.expectProgress(svc, "app:1", 2)
}

func TestStartFirstContinueHonoursRestartDelay(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 1, updateCfg(1, 0, 5*time.Second, swarm.UpdateFailureActionContinue, swarm.UpdateOrderStartFirst),
		restart(swarm.RestartPolicyConditionAny, 10*time.Second, 0, 0)))
	h.converge()
	h.onStart = failImage("app:2")
	h.update(svc, image("app:2"))
	holds(t, "start-first with failure action continue: once the new task of a slot fails, the slot again has only its old task, so the updater makes another new task in the very next pass; the restart delay is bypassed and the slot crash-loops with no pause", func(r *recorder) {
		created := map[string]bool{}
		for range 10 {
			for range 5 { // a few rounds at one instant
				h.pass()
				h.agents()
			}
			for _, tk := range h.tasks(svc) {
				created[tk.ID] = true
			}
			h.advance(time.Second)
		}
		// 10s with a 10s restart delay: the first try and at most one retry.
		if n := len(created) - 1; n > 2 {
			r.Errorf("%d new tasks created in 10s with a 10s restart delay", n)
		}
	})
}
