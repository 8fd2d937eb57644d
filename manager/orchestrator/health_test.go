package orchestrator

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// Health checks live on the workers: a task with one reports starting
// until it is healthy, and fails once it is unhealthy. These tests play
// the agent's part and check the updater waits for healthy tasks and
// rolls back from unhealthy ones, as swarm's does.

// startingImage makes the agents leave tasks of ref starting (their
// health check has not passed yet).
func startingImage(ref string) func(*state.Task) swarm.TaskState {
	return func(t *state.Task) swarm.TaskState {
		if t.Spec.ContainerSpec.Image == ref {
			return swarm.TaskStateStarting
		}
		return swarm.TaskStateRunning
	}
}

// turnUnhealthy reports what an agent does for an unhealthy task.
func (h *harness) turnUnhealthy(svc, ref string) {
	h.t.Helper()
	var ops []state.Op
	for _, t := range h.ofImage(svc, ref) {
		if !Terminal(t.Status.State) {
			ops = append(ops, h.statusOp(t.ID, swarm.TaskStateFailed, "task: unhealthy container"))
		}
	}
	if len(ops) == 0 {
		h.t.Fatalf("no live task of %s to turn unhealthy\n%s", ref, h.dump(svc))
	}
	h.mustApply(ops...)
}

func TestUpdateWaitsForNewTaskToBeHealthy(t *testing.T) {
	for _, order := range []swarm.UpdateOrder{swarm.UpdateOrderStopFirst, swarm.UpdateOrderStartFirst} {
		t.Run(string(order), func(t *testing.T) {
			h := newHarness(t)
			h.addNodes("n1", "n2", "n3")
			svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, time.Second, swarm.UpdateFailureActionRollback, order)))
			h.converge()
			h.onStart = startingImage("app:2")
			h.update(svc, image("app:2"))
			// Long past the monitor window, the update has not gone past
			// the first task: it is not running (healthy) yet.
			h.runFor(time.Minute, time.Second)
			h.expectProgress(svc, "app:2", 1)
			h.expectUpdateState(svc, swarm.UpdateStateUpdating)
			if order == swarm.UpdateOrderStartFirst {
				h.expectProgress(svc, "app:1", 3) // the old task it replaces is kept
				if n := len(h.observedRunning(svc)); n != 3 {
					t.Fatalf("start-first: %d tasks running while the new one is not healthy, want 3\n%s", n, h.dump(svc))
				}
			}

			// Healthy: the update goes on and completes.
			h.onStart = nil
			h.runFor(time.Minute, time.Second)
			h.expectUpdateState(svc, swarm.UpdateStateCompleted)
			h.expectProgress(svc, "app:2", 3)
		})
	}
}

func TestUpdateRollsBackWhenNewTaskTurnsUnhealthy(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 3, updateCfg(1, 0, 5*time.Second, swarm.UpdateFailureActionRollback, "")))
	h.converge()
	h.onStart = startingImage("app:2")
	h.update(svc, image("app:2"))
	h.runFor(10*time.Second, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateUpdating)

	h.turnUnhealthy(svc, "app:2")
	h.converge()
	h.expectUpdateState(svc, swarm.UpdateStateRollbackStarted)
	h.runFor(time.Minute, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateRollbackCompleted)
	h.expectReplicas(svc, 3)
	h.expectProgress(svc, "app:1", 3)
}

func TestUpdatePausesWhenNewTaskTurnsUnhealthy(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 2, updateCfg(1, 0, 5*time.Second, "", "")))
	h.converge()
	h.onStart = startingImage("app:2")
	h.update(svc, image("app:2"))
	h.converge()
	h.turnUnhealthy(svc, "app:2")
	h.converge()
	h.expectUpdateState(svc, swarm.UpdateStatePaused)
	// The paused update leaves the other task on the old spec.
	h.runFor(30*time.Second, time.Second)
	h.expectProgress(svc, "app:1", 1)
}

// A task that turns unhealthy while the service is not updating is
// replaced per the restart policy like any failed task.
func TestUnhealthyTaskIsReplaced(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	svc := h.create(replicatedSpec("web", 1, image("app:1"), restart(swarm.RestartPolicyConditionOnFailure, 2*time.Second, 0, 0)))
	h.converge()
	old := h.running(svc)[0]
	h.turnUnhealthy(svc, "app:1")
	h.converge()
	h.expectReplicas(svc, 0)
	h.runFor(3*time.Second, time.Second)
	h.expectReplicas(svc, 1)
	if cur := h.running(svc)[0]; cur.ID == old.ID || cur.Slot != old.Slot {
		t.Fatalf("want a new task in slot %d, got %s in slot %d\n%s", old.Slot, cur.ID, cur.Slot, h.dump(svc))
	}
}
