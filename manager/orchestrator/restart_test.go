package orchestrator

import (
	"sort"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// oneTask runs a one-replica service on one node and returns its task.
func oneTask(h *harness, opts ...specOpt) (svc string, task *state.Task) {
	h.t.Helper()
	h.addNodes("n1")
	svc = h.create(replicatedSpec("web", 1, opts...))
	h.converge()
	h.expectReplicas(svc, 1)
	return svc, h.running(svc)[0]
}

// slotTasks returns the tasks of slot 1, oldest first.
func slotTasks(h *harness, svc string) []*state.Task {
	ts := bySlot(h.tasks(svc))[1]
	sortByCreated(ts)
	return ts
}

func sortByCreated(ts []*state.Task) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].CreatedAt.Before(ts[j].CreatedAt) })
}

func TestRestartAnyWaitsForDelay(t *testing.T) {
	h := newHarness(t)
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionAny, 10*time.Second, 0, 0))

	h.advance(time.Minute)
	h.exit(first.ID, swarm.TaskStateFailed)
	h.converge()
	old := h.task(first.ID)
	if old.DesiredState != swarm.TaskStateShutdown || old.ShutdownReason != state.ReasonEnded {
		t.Fatalf("failed task: desired %s, reason %q", old.DesiredState, old.ShutdownReason)
	}
	if n := len(h.desired(svc)); n != 0 {
		t.Fatalf("replacement before the restart delay\n%s", h.dump(svc))
	}
	h.advance(9 * time.Second)
	h.converge()
	if n := len(h.desired(svc)); n != 0 {
		t.Fatalf("replacement 1s before the restart delay ends\n%s", h.dump(svc))
	}
	h.advance(time.Second)
	h.converge()
	h.expectReplicas(svc, 1)
	ts := slotTasks(h, svc)
	if len(ts) != 2 || ts[0].ID != first.ID || ts[1].Slot != 1 {
		t.Fatalf("want the failed task kept as history and a new one in slot 1\n%s", h.dump(svc))
	}
	// A task that completes is restarted too under "any".
	h.exit(ts[1].ID, swarm.TaskStateComplete)
	h.advance(10 * time.Second)
	h.converge()
	h.expectReplicas(svc, 1)
	if n := len(slotTasks(h, svc)); n != 3 {
		t.Fatalf("want 3 tasks in slot 1, got %d", n)
	}
}

func TestRestartDefaultDelayIsFiveSeconds(t *testing.T) {
	h := newHarness(t)
	svc, first := oneTask(h)
	h.exit(first.ID, swarm.TaskStateFailed)
	h.advance(4900 * time.Millisecond)
	h.converge()
	if n := len(h.desired(svc)); n != 0 {
		t.Fatalf("replacement before docker's default 5s delay\n%s", h.dump(svc))
	}
	h.advance(100 * time.Millisecond)
	h.converge()
	h.expectReplicas(svc, 1)
}

func TestRestartNone(t *testing.T) {
	for _, end := range []swarm.TaskState{swarm.TaskStateFailed, swarm.TaskStateComplete} {
		t.Run(string(end), func(t *testing.T) {
			h := newHarness(t)
			svc, first := oneTask(h, restart(swarm.RestartPolicyConditionNone, 0, 0, 0))
			h.exit(first.ID, end)
			for range 3 {
				h.advance(time.Hour)
				h.converge()
			}
			if n := len(h.tasks(svc)); n != 1 {
				t.Fatalf("restart none: want the one task, got %d\n%s", n, h.dump(svc))
			}
			if tk := h.task(first.ID); tk.DesiredState != swarm.TaskStateShutdown || tk.Status.State != end {
				t.Fatalf("ended task: desired %s state %s", tk.DesiredState, tk.Status.State)
			}
		})
	}
}

func TestRestartOnFailure(t *testing.T) {
	h := newHarness(t)
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionOnFailure, time.Second, 0, 0))
	h.exit(first.ID, swarm.TaskStateFailed)
	h.advance(time.Second)
	h.converge()
	h.expectReplicas(svc, 1)
	second := h.running(svc)[0]
	h.exit(second.ID, swarm.TaskStateComplete)
	h.advance(time.Hour)
	h.converge()
	if n := len(h.desired(svc)); n != 0 {
		t.Fatalf("on-failure restarted a task that completed\n%s", h.dump(svc))
	}
}

// failing makes every task of the service fail as soon as it starts.
func failing(svc string) func(*state.Task) swarm.TaskState {
	return func(t *state.Task) swarm.TaskState {
		if t.ServiceID == svc {
			return swarm.TaskStateFailed
		}
		return swarm.TaskStateRunning
	}
}

// runFor drives the cluster for d in steps.
func (h *harness) runFor(d, step time.Duration) {
	for end := h.now.Add(d); h.now.Before(end); {
		h.advance(step)
		h.converge()
	}
}

func TestRestartMaxAttemptsWithoutWindow(t *testing.T) {
	h := newHarness(t)
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionAny, time.Second, 2, 0))
	h.onStart = failing(svc)
	h.exit(first.ID, swarm.TaskStateFailed)
	h.runFor(time.Minute, time.Second)
	ts := slotTasks(h, svc)
	if len(ts) != 3 {
		t.Fatalf("max attempts 2: want the first task and 2 restarts, got %d tasks\n%s", len(ts), h.dump(svc))
	}
	for _, tk := range ts {
		if tk.Status.State != swarm.TaskStateFailed || tk.DesiredState != swarm.TaskStateShutdown {
			t.Errorf("task %s: %s / desired %s", tk.ID, tk.Status.State, tk.DesiredState)
		}
	}
}

func TestRestartMaxAttemptsWithWindow(t *testing.T) {
	h := newHarness(t)
	// Two restarts within 10s at most; failures older than that do not count.
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionAny, time.Second, 2, 10*time.Second))
	h.exit(first.ID, swarm.TaskStateFailed) // failure 1 at +0
	h.advance(time.Second)
	h.converge() // restart 1
	second := h.running(svc)[0]
	h.advance(20 * time.Second)
	h.exit(second.ID, swarm.TaskStateFailed) // failure 2 at +21s: the first is out of the window
	h.advance(time.Second)
	h.converge() // restart 2
	if len(h.running(svc)) != 1 {
		t.Fatalf("a failure outside the window counted against max attempts\n%s", h.dump(svc))
	}
	h.onStart = failing(svc)
	third := h.running(svc)[0]
	h.exit(third.ID, swarm.TaskStateFailed) // failure 3 at +22s
	h.advance(time.Second)
	h.converge() // restart 3 (one failure, at +21s, in the window besides this one) then fails at once
	h.advance(time.Second)
	h.converge() // two failures within 10s: give up
	n := len(slotTasks(h, svc))
	if n != 4 {
		t.Fatalf("want 4 tasks (3 restarts, the last two within the window), got %d\n%s", n, h.dump(svc))
	}
	h.advance(5 * time.Second)
	h.converge()
	if got := len(slotTasks(h, svc)); got != n {
		t.Fatalf("restarted after giving up\n%s", h.dump(svc))
	}
}

func TestRestartMaxAttemptsGiveUpForGood(t *testing.T) {
	h := newHarness(t)
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionAny, time.Second, 1, 10*time.Second))
	h.onStart = failing(svc)
	h.exit(first.ID, swarm.TaskStateFailed)
	h.runFor(5*time.Second, time.Second)
	n := len(slotTasks(h, svc))
	if n != 2 {
		t.Fatalf("want 2 tasks (1 restart), got %d\n%s", n, h.dump(svc))
	}
	h.runFor(time.Minute, time.Second)
	if got := len(slotTasks(h, svc)); got != n {
		t.Errorf("gave up with %d tasks; a minute later the slot has %d\n%s", n, got, h.dump(svc))
	}
}

func TestRestartMaxAttemptsBeyondHistoryRetention(t *testing.T) {
	h := newHarness(t)
	// Docker's default retention (5) and a max attempts above it.
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionAny, time.Second, 7, 0))
	h.onStart = failing(svc)
	h.exit(first.ID, swarm.TaskStateFailed)
	holds(t, "max attempts is counted from the task history, which the reaper trims to TaskHistoryRetentionLimit per slot: a max attempts at or above the limit never stops restarting", func(r *recorder) {
		created := map[string]bool{}
		for range 60 {
			h.advance(time.Second)
			h.converge()
			for _, tk := range h.tasks(svc) {
				created[tk.ID] = true
			}
		}
		if len(created) != 8 {
			r.Errorf("max attempts 7: want 8 tasks in all (first + 7 restarts), %d were created in a minute", len(created))
		}
	})
}

func TestRestartPolicyWithZeroHistoryRetention(t *testing.T) {
	h := newHarness(t)
	h.setRetention(0) // allowed: manager/cluster.go accepts 0 or more
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionNone, time.Hour, 0, 0))
	h.exit(first.ID, swarm.TaskStateFailed)
	holds(t, "with TaskHistoryRetentionLimit 0 the reaper deletes a slot's last ended task, and the slot then looks new: restart condition none and the restart delay are ignored", func(r *recorder) {
		h.converge()
		if n := len(h.desired(svc)); n != 0 {
			r.Errorf("restart condition none (delay 1h): a new task started at once\n%s", h.dump(svc))
		}
	})
}

func TestNewSpecStartsDespiteExhaustedRestarts(t *testing.T) {
	h := newHarness(t)
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionAny, time.Second, 1, 0))
	h.onStart = failing(svc)
	h.exit(first.ID, swarm.TaskStateFailed)
	h.runFor(10*time.Second, time.Second)
	if n := len(h.desired(svc)); n != 0 {
		t.Fatalf("restarts should be exhausted\n%s", h.dump(svc))
	}
	// The user fixes the image: the slot gets a task of the new spec.
	h.onStart = nil
	h.update(svc, image("app:2"))
	holds(t, "the restart policy of a slot is judged on its latest task even when that task ran an older spec: after restarts are exhausted (or with condition none / a completed task) a service update never starts the new spec in that slot, and the update stays 'updating' for ever (docker resets restart history on a new spec version; `service update --force` reruns such slots)", func(r *recorder) {
		h.runFor(30*time.Second, time.Second)
		if n := len(h.running(svc)); n != 1 {
			r.Errorf("after the update: want 1 running task of the new spec, got %d\n%s", n, h.dump(svc))
		}
		if s := h.service(svc); s.UpdateStatus == nil || s.UpdateStatus.State != swarm.UpdateStateCompleted {
			r.Errorf("update state: %+v", s.UpdateStatus)
		}
	})
}

func TestRestartNoneSlotUpdateCompletes(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("batch", 2, restart(swarm.RestartPolicyConditionNone, 0, 0, 0),
		updateCfg(1, 0, time.Second, "", "")))
	h.converge()
	done := h.running(svc)[0]
	h.exit(done.ID, swarm.TaskStateComplete)
	h.converge()
	h.update(svc, image("app:2"))
	holds(t, "a slot whose task ended under restart condition none is counted as an empty slot to refill, but is never refilled: the rolling update never completes", func(r *recorder) {
		h.runFor(time.Minute, time.Second)
		if s := h.service(svc); s.UpdateStatus == nil || s.UpdateStatus.State != swarm.UpdateStateCompleted {
			r.Errorf("update state after a minute: %+v\n%s", s.UpdateStatus, h.dump(svc))
		}
	})
}

func TestRestartDelayWithWorkerClockAhead(t *testing.T) {
	h := newHarness(t)
	svc, first := oneTask(h, restart(swarm.RestartPolicyConditionAny, 5*time.Second, 0, 0))
	h.skew = time.Hour // the worker's clock is an hour ahead of the leader's
	h.exit(first.ID, swarm.TaskStateFailed)
	holds(t, "timed decisions (restart delay and window, update monitor) compare the leader's clock with TaskStatus.Timestamp, which the worker stamps with its own clock: a worker whose clock is ahead delays restarts by the skew, one behind skips the delay and the monitor window", func(r *recorder) {
		h.runFor(10*time.Second, time.Second)
		if n := len(h.running(svc)); n != 1 {
			r.Errorf("10s after a failure with a 5s restart delay: %d running (worker clock +1h)\n%s", n, h.dump(svc))
		}
	})
}
