package orchestrator

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

func TestServiceRemoval(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 6))
	h.converge()
	// One task never placed (no node fits it), two on a node that died.
	stuck := h.create(replicatedSpec("stuck", 1, constraints("node.labels.zone==nowhere")))
	h.converge()
	h.setNodeState("n3", swarm.NodeStateDown)
	h.holdAll(true) // workers are slow to stop what they run
	h.remove(svc)
	h.remove(stuck)
	for _, tk := range h.tasks(svc) {
		if tk.DesiredState != swarm.TaskStateRemove {
			t.Fatalf("task of a removed service: desired %s", tk.DesiredState)
		}
	}
	h.pass()
	if n := len(h.tasks(stuck)); n != 0 {
		t.Fatalf("the never-placed task should go at once\n%s", h.dump(stuck))
	}
	// Tasks of the dead node go at once, running ones wait for their
	// worker to stop them.
	for _, tk := range h.tasks(svc) {
		if tk.NodeID == "n3" {
			t.Fatalf("task of the down node kept\n%s", h.dump(svc))
		}
		if tk.Status.State != swarm.TaskStateRunning {
			t.Fatalf("task %s: %s", tk.ID, tk.Status.State)
		}
	}
	if n := len(h.tasks(svc)); n == 0 {
		t.Fatalf("running tasks removed before their workers stopped them")
	}
	h.holdAll(false)
	h.converge()
	if n := len(h.tasks(svc)); n != 0 {
		t.Fatalf("%d tasks left after removal\n%s", n, h.dump(svc))
	}
}

func TestRemovedServiceTasksAreStopped(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	svc := h.create(replicatedSpec("web", 2))
	h.converge()
	// The service is deleted but the patches that mark its tasks did not
	// land (manager.RemoveService writes them in chunks after the delete;
	// a leader change between chunks leaves them out).
	h.mustApply(state.NewOp(state.TableServices, state.ActionDelete, h.service(svc), 0))
	h.runFor(time.Minute, 10*time.Second)
	holds(t, "tasks whose service no longer exists but whose desired state is still running are never stopped: orphans() is a stub and reap only deletes tasks that already ended", func(r *recorder) {
		if n := len(h.observedRunning(svc)); n != 0 {
			r.Errorf("%d tasks of a deleted service still run a minute later\n%s", n, h.dump(svc))
		}
	})
}

func TestHistoryRetentionPerSlot(t *testing.T) {
	h := newHarness(t)
	h.setRetention(3)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 2, restart(swarm.RestartPolicyConditionAny, time.Second, 0, 0)))
	h.converge()
	var failedIDs []string
	for range 10 {
		tk := bySlot(h.running(svc))[1][0]
		failedIDs = append(failedIDs, tk.ID)
		h.exit(tk.ID, swarm.TaskStateFailed)
		h.advance(time.Second)
		h.converge()
	}
	h.expectReplicas(svc, 2)
	// The oldest go, the newest stay, the running one is never reaped.
	for _, id := range failedIDs[:7] {
		if h.task(id) != nil {
			t.Fatalf("an old task %s was kept over newer ones\n%s", id, h.dump(svc))
		}
	}
	for _, id := range failedIDs[8:] {
		if h.task(id) == nil {
			t.Fatalf("a recent task %s was reaped\n%s", id, h.dump(svc))
		}
	}
	if n := len(bySlot(h.tasks(svc))[2]); n != 1 {
		t.Fatalf("slot 2 never failed: want its one task, got %d", n)
	}
	holds(t, "history retention keeps TaskHistoryRetentionLimit ended tasks per slot plus the running one; swarmkit's task reaper counts the running task in the limit (N tasks per slot in all, so `service ps` shows N rows per slot)", func(r *recorder) {
		if n := len(bySlot(h.tasks(svc))[1]); n != 3 {
			r.Errorf("retention 3: slot 1 holds %d tasks\n%s", n, h.dump(svc))
		}
	})
}

func TestHistoryRetentionGlobalPerNode(t *testing.T) {
	h := newHarness(t)
	h.setRetention(2)
	h.addNodes("n1", "n2")
	svc := h.create(globalSpec("agent", restart(swarm.RestartPolicyConditionAny, time.Second, 0, 0)))
	h.converge()
	var failedIDs []string
	for range 6 {
		tk := byNodeID(h.running(svc))["n1"]
		failedIDs = append(failedIDs, tk.ID)
		h.exit(tk.ID, swarm.TaskStateFailed)
		h.advance(time.Second)
		h.converge()
	}
	h.expectGlobalOn(svc, "n1", "n2")
	for _, id := range failedIDs[:4] {
		if h.task(id) != nil {
			t.Fatalf("an old task %s of n1 was kept\n%s", id, h.dump(svc))
		}
	}
	if h.task(failedIDs[5]) == nil {
		t.Fatalf("the latest ended task of n1 was reaped\n%s", h.dump(svc))
	}
	if got := byNode(h.tasks(svc)); got["n2"] != 1 {
		t.Fatalf("n2's history: %v", got)
	}
}

func TestStoppingTasksKeepTheirReservations(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", capacity(1))
	old := h.create(replicatedSpec("old", 1, reserveCPU(1)))
	h.converge()
	h.holdAll(true) // the old task takes its time to stop
	h.remove(old)
	h.create(replicatedSpec("new", 1, reserveCPU(1)))
	h.pass()
	overcommitted := false
	if ts := h.desired("new"); len(ts) == 1 && ts[0].NodeID != "" {
		overcommitted = true
	}
	snapshot := h.dump(old) + h.dump("new")
	h.holdAll(false)
	h.converge()
	h.expectReplicas("new", 1)
	holds(t, "schedule() passes the scheduler only tasks whose desired state is running, so a task asked to stop but still running on its node reserves nothing: the node's capacity is given away while it still runs (the scheduler's own doc says such tasks reserve resources)", func(r *recorder) {
		if overcommitted {
			r.Errorf("the 1-CPU node still runs a 1-CPU task, yet the new 1-CPU task was placed on it\n%s", snapshot)
		}
	})
}
