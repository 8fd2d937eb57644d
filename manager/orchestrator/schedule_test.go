package orchestrator

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// A new service's tasks are written once: created already on their
// nodes, in the pass that makes them. A create followed by a placement a
// pass later cost every manager two applies per task.
func TestNewTasksAreCreatedPlacedInOneWrite(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 4))
	if got := h.passOnce(); got != 1 {
		t.Fatalf("the pass wrote %d batches, want 1", got)
	}
	ts := h.tasks(svc)
	if len(ts) != 4 {
		t.Fatalf("want 4 tasks after one pass\n%s", h.dump(svc))
	}
	for _, tk := range ts {
		if tk.Status.State != swarm.TaskStateAssigned || tk.NodeID == "" {
			t.Fatalf("task %s is %s on %q, want assigned to a node\n%s", tk.ID, tk.Status.State, tk.NodeID, h.dump(svc))
		}
	}
	if got := byNode(ts); got["n1"] != 2 || got["n2"] != 2 {
		t.Fatalf("want 2 tasks on each node, got %v", got)
	}
	// The next pass has nothing to place.
	if h.passOnce() != 0 {
		t.Fatalf("a pass after the create still wrote\n%s", h.dump(svc))
	}
}

// A task that fits nowhere is created pending with the reason, in the
// same single write.
func TestMadeTaskUnplacedCarriesReason(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	svc := h.create(replicatedSpec("web", 1, constraints("node.labels.zone==a")))
	if got := h.passOnce(); got != 1 {
		t.Fatalf("the pass wrote %d batches, want 1", got)
	}
	ts := h.desired(svc)
	if len(ts) != 1 || ts[0].Status.State != swarm.TaskStatePending || ts[0].NodeID != "" || !strings.Contains(ts[0].Status.Err, "no suitable node") {
		t.Fatalf("want the new task pending with why\n%s", h.dump(svc))
	}
}

// A service larger than a pass makes is placed by the last pass, all at
// once: each node gets its tasks in one answer, not one per pass.
func TestServiceOverPassBoundPlacedAtOnce(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("big", MaxTasksPerPass+6))
	h.passOnce()
	for _, tk := range h.tasks(svc) {
		if tk.Status.State != swarm.TaskStatePending || tk.NodeID != "" {
			t.Fatalf("after the first pass task %s is %s on %q, want all pending", tk.ID, tk.Status.State, tk.NodeID)
		}
	}
	if h.passOnce() == 0 {
		t.Fatal("the second pass wrote nothing")
	}
	ts := h.tasks(svc)
	if len(ts) != MaxTasksPerPass+6 {
		t.Fatalf("%d tasks after two passes, want %d", len(ts), MaxTasksPerPass+6)
	}
	for _, tk := range ts {
		if tk.Status.State != swarm.TaskStateAssigned {
			t.Fatalf("after the second pass task %s is %s, want every task assigned", tk.ID, tk.Status.State)
		}
	}
	if got := byNode(ts); got["n1"] != got["n2"] {
		t.Errorf("tasks by node %v, want them spread evenly", got)
	}
}
