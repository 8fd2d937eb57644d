package orchestrator

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// expectOneRunnerPerSlot checks that no slot has two tasks wanted, nor two
// tasks running on workers.
func (h *harness) expectOneRunnerPerSlot(svc string) {
	h.t.Helper()
	for slot, ts := range bySlot(h.desired(svc)) {
		if len(ts) > 1 {
			h.t.Fatalf("slot %d has %d wanted tasks\n%s", slot, len(ts), h.dump(svc))
		}
	}
	for slot, ts := range bySlot(h.observedRunning(svc)) {
		if len(ts) > 1 {
			h.t.Fatalf("slot %d runs twice\n%s", slot, h.dump(svc))
		}
	}
}

func TestNodeDownReplacesAtOnceAndComesBackClean(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	// A long restart delay: a dead node's tasks must not wait for it.
	svc := h.create(replicatedSpec("web", 6, restart(swarm.RestartPolicyConditionAny, time.Hour, 0, 0)))
	h.converge()
	h.expectReplicas(svc, 6)
	var lost []*state.Task
	for _, tk := range h.running(svc) {
		if tk.NodeID == "n1" {
			lost = append(lost, tk)
		}
	}
	if len(lost) != 2 {
		t.Fatalf("want 2 tasks on n1\n%s", h.dump(svc))
	}

	h.setNodeState("n1", swarm.NodeStateDown)
	h.converge() // no clock change
	h.expectReplicas(svc, 6)
	for _, old := range lost {
		tk := h.task(old.ID)
		if tk.DesiredState != swarm.TaskStateShutdown || tk.ShutdownReason != state.ReasonNodeDown {
			t.Errorf("task of the dead node: desired %s reason %q", tk.DesiredState, tk.ShutdownReason)
		}
		if tk.Status.State != swarm.TaskStateRunning {
			t.Errorf("nobody heard from the dead node, yet its task is %s", tk.Status.State)
		}
	}
	if got := byNode(h.running(svc)); got["n1"] != 0 || got["n2"] != 3 || got["n3"] != 3 {
		t.Fatalf("replacements: %v\n%s", got, h.dump(svc))
	}

	// The node returns: its stale tasks stop, nothing runs twice, nothing
	// moves back (no rebalancing, as docker).
	h.setNodeState("n1", swarm.NodeStateReady)
	h.converge()
	h.expectReplicas(svc, 6)
	h.expectOneRunnerPerSlot(svc)
	for _, old := range lost {
		if tk := h.task(old.ID); tk.Status.State != swarm.TaskStateShutdown {
			t.Errorf("stale task of the returning node is %s", tk.Status.State)
		}
	}
	if got := byNode(h.running(svc)); got["n1"] != 0 {
		t.Errorf("tasks moved back to n1: %v", got)
	}
}

func TestNodeDownBeforeTaskStarted(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	h.held["n1"] = true // n1 never gets to start its task
	svc := h.create(replicatedSpec("web", 2))
	h.converge()
	var stuck *state.Task
	for _, tk := range h.desired(svc) {
		if tk.NodeID == "n1" {
			stuck = tk
		}
	}
	if stuck == nil || stuck.Status.State != swarm.TaskStateAssigned {
		t.Fatalf("want an assigned task on n1\n%s", h.dump(svc))
	}
	h.setNodeState("n1", swarm.NodeStateDown)
	h.converge()
	h.expectReplicas(svc, 2)
	if got := byNode(h.running(svc)); got["n2"] != 2 {
		t.Fatalf("want both on n2: %v", got)
	}
}

func TestSingleNodeDownAndBack(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	svc := h.create(replicatedSpec("web", 2))
	h.converge()
	h.setNodeState("n1", swarm.NodeStateDown)
	h.converge()
	// Replacements wait for a node.
	if n := len(h.desired(svc)); n != 2 {
		t.Fatalf("want 2 replacement tasks waiting\n%s", h.dump(svc))
	}
	h.setNodeState("n1", swarm.NodeStateReady)
	h.converge()
	h.expectReplicas(svc, 2)
	h.expectOneRunnerPerSlot(svc)
}

func TestNodeRemovedReplacesItsTasks(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 2))
	h.converge()
	h.setNodeState("n1", swarm.NodeStateDown)
	h.removeNode("n1")
	h.converge()
	h.expectReplicas(svc, 2)
	if got := byNode(h.running(svc)); got["n2"] != 2 {
		t.Fatalf("want both on n2: %v", got)
	}
}

func TestDrainMovesReplicatedTasks(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 6, restart(swarm.RestartPolicyConditionAny, time.Hour, 0, 0)))
	h.converge()
	h.updateNode("n1", availability(swarm.NodeAvailabilityDrain))
	h.converge()
	h.expectReplicas(svc, 6)
	h.expectOneRunnerPerSlot(svc)
	if got := byNode(h.running(svc)); got["n1"] != 0 || got["n2"] != 3 || got["n3"] != 3 {
		t.Fatalf("after drain: %v\n%s", got, h.dump(svc))
	}
	for _, tk := range h.tasks(svc) {
		if tk.NodeID == "n1" && (tk.ShutdownReason != state.ReasonDrain || tk.Status.State != swarm.TaskStateShutdown) {
			t.Errorf("task on drained node: reason %q state %s", tk.ShutdownReason, tk.Status.State)
		}
	}
	// Active again: it takes new work but nothing is moved back.
	h.updateNode("n1", availability(swarm.NodeAvailabilityActive))
	h.converge()
	if got := byNode(h.running(svc)); got["n1"] != 0 {
		t.Fatalf("tasks moved back: %v", got)
	}
	h.scale(svc, 9)
	h.converge()
	h.expectReplicas(svc, 9)
	if got := byNode(h.running(svc)); got["n1"] != 3 {
		t.Fatalf("the reactivated node should get the new tasks: %v", got)
	}
}

func TestPausedNodeKeepsTasksGetsNoNewOnes(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 2))
	h.converge()
	h.updateNode("n1", availability(swarm.NodeAvailabilityPause))
	h.converge()
	if got := byNode(h.running(svc)); got["n1"] != 1 || got["n2"] != 1 {
		t.Fatalf("pause moved tasks: %v", got)
	}
	h.scale(svc, 4)
	h.converge()
	h.expectReplicas(svc, 4)
	if got := byNode(h.running(svc)); got["n1"] != 1 || got["n2"] != 3 {
		t.Fatalf("paused node took new tasks: %v", got)
	}
}

func TestStopFirstUpdateWhenNodeDiesBeforeOldTaskStops(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 1, updateCfg(1, 0, time.Second, "", "")))
	h.converge()
	old := h.running(svc)[0]
	h.held[old.NodeID] = true // the worker is slow to stop it…
	h.update(svc, image("app:2"))
	h.converge()
	if tk := h.task(old.ID); tk.DesiredState != swarm.TaskStateShutdown || tk.Status.State != swarm.TaskStateRunning {
		t.Fatalf("want the old task asked to stop, still running\n%s", h.dump(svc))
	}
	h.setNodeState(old.NodeID, swarm.NodeStateDown) // …and dies before it reports
	holds(t, "stop-first: a slot waits for its old task (shut down for the update) to report a final state, even when the task's node is Down or removed: the replica stays missing and the update stalls until the node returns", func(r *recorder) {
		h.runFor(time.Minute, time.Second)
		if n := len(h.running(svc)); n != 1 {
			r.Errorf("a minute after the node died: %d running tasks, want 1\n%s", n, h.dump(svc))
		}
		if s := h.service(svc); s.UpdateStatus == nil || s.UpdateStatus.State != swarm.UpdateStateCompleted {
			r.Errorf("update state: %+v", s.UpdateStatus)
		}
	})
}

func TestGlobalUpdateWithDownNode(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(globalSpec("agent", updateCfg(0, 0, time.Second, "", "")))
	h.converge()
	h.setNodeState("n3", swarm.NodeStateDown)
	h.converge()
	h.update(svc, image("app:2"))
	h.runFor(time.Minute, time.Second)
	stalled := h.service(svc).UpdateStatus
	stalledDump := h.dump(svc)
	// Either way, once the node returns it runs the new spec.
	h.setNodeState("n3", swarm.NodeStateReady)
	h.runFor(10*time.Second, time.Second)
	h.expectUpdateState(svc, swarm.UpdateStateCompleted)
	h.expectGlobalOn(svc, "n1", "n2", "n3")
	h.expectProgress(svc, "app:2", 3)
	holds(t, "same cause as the stop-first node death: the updater waits for the old task of a Down node to report that it stopped, which it cannot; a global update stalls for as long as any node is Down", func(r *recorder) {
		if stalled == nil || stalled.State != swarm.UpdateStateCompleted {
			r.Errorf("update state a minute after, n3 still down: %+v\n%s", stalled, stalledDump)
		}
	})
}
