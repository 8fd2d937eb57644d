package orchestrator

import (
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// expectGlobalOn checks that exactly the given nodes run one wanted task
// of the service each.
func (h *harness) expectGlobalOn(svc string, nodes ...string) {
	h.t.Helper()
	want := map[string]int{}
	for _, n := range nodes {
		want[n] = 1
	}
	got := byNode(h.running(svc))
	desired := byNode(h.desired(svc))
	if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(desired) != fmt.Sprint(want) {
		h.t.Fatalf("want one running task on each of %v; running %v, wanted %v\n%s", nodes, got, desired, h.dump(svc))
	}
	for _, t := range h.tasks(svc) {
		if t.Slot != 0 {
			h.t.Fatalf("global task with slot %d", t.Slot)
		}
	}
}

func TestGlobalOnePerNodeAndJoiners(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(globalSpec("agent"))
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2", "n3")

	h.addNodes("n4")
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2", "n3", "n4")

	// A node that joins paused gets nothing.
	h.addNode("n5", availability(swarm.NodeAvailabilityPause))
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2", "n3", "n4")
	// Activated, it gets its task.
	h.updateNode("n5", availability(swarm.NodeAvailabilityActive))
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2", "n3", "n4", "n5")
}

func TestGlobalDrainPauseRemove(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(globalSpec("agent"))
	h.converge()
	onN1 := byNodeID(h.desired(svc))["n1"]

	h.updateNode("n1", availability(swarm.NodeAvailabilityPause))
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2", "n3")
	if byNodeID(h.desired(svc))["n1"].ID != onN1.ID {
		t.Fatalf("pausing replaced the task")
	}

	h.updateNode("n2", availability(swarm.NodeAvailabilityDrain))
	h.converge()
	h.expectGlobalOn(svc, "n1", "n3")
	for _, tk := range h.tasks(svc) {
		if tk.NodeID == "n2" && (tk.ShutdownReason != state.ReasonDrain || tk.Status.State != swarm.TaskStateShutdown) {
			t.Errorf("task on drained node: reason %q state %s", tk.ShutdownReason, tk.Status.State)
		}
	}
	h.updateNode("n2", availability(swarm.NodeAvailabilityActive))
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2", "n3")

	h.setNodeState("n3", swarm.NodeStateDown)
	h.removeNode("n3")
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2")
	for _, tk := range h.tasks(svc) {
		if tk.NodeID == "n3" && tk.ShutdownReason != state.ReasonRemoved {
			t.Errorf("task of the removed node: reason %q", tk.ShutdownReason)
		}
	}
}

func byNodeID(ts []*state.Task) map[string]*state.Task {
	out := map[string]*state.Task{}
	for _, t := range ts {
		out[t.NodeID] = t
	}
	return out
}

func TestGlobalNodeDownKeepsItsTask(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(globalSpec("agent"))
	h.converge()
	keep := byNodeID(h.desired(svc))["n1"]
	h.setNodeState("n1", swarm.NodeStateDown)
	h.converge()
	// Nowhere else to run it: the task stays with its node.
	if tk := h.task(keep.ID); tk.DesiredState != swarm.TaskStateRunning {
		t.Fatalf("global task of a down node: desired %s", tk.DesiredState)
	}
	if n := len(h.desired(svc)); n != 2 {
		t.Fatalf("want 2 wanted tasks\n%s", h.dump(svc))
	}
	h.setNodeState("n1", swarm.NodeStateReady)
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2")
	if byNodeID(h.desired(svc))["n1"].ID != keep.ID {
		t.Fatalf("the returning node's task was replaced")
	}
}

func TestGlobalConstraints(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", label("zone", "a"))
	h.addNode("n2", label("zone", "b"))
	h.addNode("n3", label("zone", "a"))
	svc := h.create(globalSpec("agent", constraints("node.labels.zone==a")))
	h.converge()
	h.expectGlobalOn(svc, "n1", "n3")

	h.addNode("n4", label("zone", "a"))
	h.addNode("n5")
	h.converge()
	h.expectGlobalOn(svc, "n1", "n3", "n4")

	// A node whose labels stop matching loses its task; one that starts
	// matching gets one.
	h.updateNode("n1", label("zone", "b"))
	h.updateNode("n2", label("zone", "a"))
	h.converge()
	h.expectGlobalOn(svc, "n2", "n3", "n4")
}

func TestGlobalRestartPolicy(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(globalSpec("agent", restart(swarm.RestartPolicyConditionOnFailure, 3*time.Second, 0, 0)))
	h.converge()
	first := byNodeID(h.desired(svc))["n1"]
	h.exit(first.ID, swarm.TaskStateFailed)
	h.converge()
	if _, ok := byNodeID(h.desired(svc))["n1"]; ok {
		t.Fatalf("restarted before the delay\n%s", h.dump(svc))
	}
	h.advance(3 * time.Second)
	h.converge()
	h.expectGlobalOn(svc, "n1", "n2")
	second := byNodeID(h.desired(svc))["n2"]
	h.exit(second.ID, swarm.TaskStateComplete)
	h.advance(time.Hour)
	h.converge()
	h.expectGlobalOn(svc, "n1")
}

func TestGlobalTaskOfPausedNodeFailsIsNotReplaced(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	svc := h.create(globalSpec("agent", restart(swarm.RestartPolicyConditionAny, 0, 0, 0)))
	h.converge()
	h.updateNode("n1", availability(swarm.NodeAvailabilityPause))
	h.exit(h.running(svc)[0].ID, swarm.TaskStateFailed)
	h.advance(time.Minute)
	h.converge()
	if n := len(h.desired(svc)); n != 0 {
		t.Fatalf("a paused node got a new task\n%s", h.dump(svc))
	}
}

func TestGlobalUpdateOnPausedNode(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(globalSpec("agent", updateCfg(0, 0, time.Second, "", "")))
	h.converge()
	h.updateNode("n1", availability(swarm.NodeAvailabilityPause))
	h.converge()
	h.update(svc, image("app:2"))
	h.runFor(10*time.Second, time.Second)
	holds(t, "global rolling update (stop-first) shuts down the task of a paused node for the update, then reconcileGlobal refuses a new task there (paused: nothing new): the paused node ends up with no task, yet the update reports completed (swarmkit neither adds nor updates tasks on paused nodes)", func(r *recorder) {
		if _, ok := byNodeID(h.running(svc))["n1"]; !ok {
			r.Errorf("the paused node lost its global task\n%s", h.dump(svc))
		}
	})
}

func TestGlobalReservationsAreChecked(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", capacity(1))
	h.addNode("n2", capacity(4))
	svc := h.create(globalSpec("agent", reserveCPU(2)))
	h.converge()
	holds(t, "a global task names its node and the orchestrator assigns it directly when the node is usable (schedule.go), skipping the scheduler's resource (and platform/driver/max-replicas) checks: a node without the reserved capacity gets the task", func(r *recorder) {
		if tk, ok := byNodeID(h.running(svc))["n1"]; ok {
			r.Errorf("task reserving 2 CPUs runs on a 1-CPU node (%s)", tk.ID)
		}
		if _, ok := byNodeID(h.running(svc))["n2"]; !ok {
			r.Errorf("no task on the 4-CPU node")
		}
	})
}
