package orchestrator

import (
	"context"

	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

func TestReplicatedCreateFillsSlotsAndSpreads(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 6))
	h.converge()

	h.expectReplicas(svc, 6)
	for _, tk := range h.tasks(svc) {
		if tk.SpecVersion != 1 || tk.Spec.ContainerSpec.Image != "app:1" || tk.ServiceID != svc {
			t.Errorf("task %s: spec version %d, image %q", tk.ID, tk.SpecVersion, tk.Spec.ContainerSpec.Image)
		}
	}
	if got := byNode(h.running(svc)); got["n1"] != 2 || got["n2"] != 2 || got["n3"] != 2 {
		t.Fatalf("want 2 tasks on each node, got %v\n%s", got, h.dump(svc))
	}
	// Nothing more to do: a settled cluster writes nothing.
	before := h.store.Index()
	h.converge()
	if h.store.Index() != before {
		t.Fatalf("a settled service still causes writes")
	}
}

func TestReplicatedSpreadAcrossServices(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	a := h.create(replicatedSpec("a", 1))
	h.converge()
	b := h.create(replicatedSpec("b", 1))
	h.converge()
	na, nb := h.running(a)[0].NodeID, h.running(b)[0].NodeID
	if na == nb {
		t.Fatalf("two one-replica services on the same node %s while another is empty", na)
	}
}

func TestScaleUpAndDown(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3")
	svc := h.create(replicatedSpec("web", 3))
	h.converge()
	h.expectReplicas(svc, 3)
	keep := map[int]string{}
	for _, tk := range h.running(svc) {
		keep[tk.Slot] = tk.ID
	}

	h.scale(svc, 5)
	h.converge()
	h.expectReplicas(svc, 5)
	for _, tk := range h.running(svc) {
		if id, ok := keep[tk.Slot]; ok && id != tk.ID {
			t.Errorf("scaling up replaced the task of slot %d", tk.Slot)
		}
	}
	if got := byNode(h.running(svc)); got["n1"] > 2 || got["n2"] > 2 || got["n3"] > 2 {
		t.Errorf("scale up not spread: %v", got)
	}

	h.scale(svc, 2)
	h.converge()
	h.expectReplicas(svc, 2)
	for _, tk := range h.tasks(svc) {
		switch {
		case tk.Slot <= 2 && tk.ID != keep[tk.Slot]:
			t.Errorf("scaling down touched slot %d", tk.Slot)
		case tk.Slot > 2 && (tk.DesiredState != swarm.TaskStateShutdown || tk.ShutdownReason != state.ReasonScale || tk.Status.State != swarm.TaskStateShutdown):
			t.Errorf("slot %d after scale down: desired %s (%s), state %s", tk.Slot, tk.DesiredState, tk.ShutdownReason, tk.Status.State)
		}
	}

	// Scaling to zero stops everything; scaling back up fills the slots again.
	h.scale(svc, 0)
	h.converge()
	if n := len(h.desired(svc)); n != 0 {
		t.Fatalf("scaled to 0, %d tasks still wanted\n%s", n, h.dump(svc))
	}
	if n := len(h.observedRunning(svc)); n != 0 {
		t.Fatalf("scaled to 0, %d tasks still run", n)
	}
	h.scale(svc, 3)
	h.converge()
	h.expectReplicas(svc, 3)
}

func TestUnplaceableTaskWaitsWithReasonThenPlaces(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	svc := h.create(replicatedSpec("web", 2, constraints("node.labels.zone==a")))
	h.converge()
	ts := h.desired(svc)
	if len(ts) != 2 {
		t.Fatalf("want 2 pending tasks\n%s", h.dump(svc))
	}
	for _, tk := range ts {
		if tk.Status.State != swarm.TaskStatePending || tk.NodeID != "" || !strings.Contains(tk.Status.Err, "no suitable node") {
			t.Fatalf("want pending with a reason, got %s %q", tk.Status.State, tk.Status.Err)
		}
	}
	h.addNode("n2", label("zone", "a"))
	h.converge()
	h.expectReplicas(svc, 2)
	if got := byNode(h.running(svc)); got["n2"] != 2 {
		t.Fatalf("want both on n2: %v", got)
	}
	for _, tk := range h.running(svc) {
		if tk.Status.Err != "" {
			t.Errorf("placed task keeps the unplaced reason %q", tk.Status.Err)
		}
	}
}

func TestScaleDownOfUnplacedTaskShutsItDown(t *testing.T) {
	h := newHarness(t)
	svc := h.create(replicatedSpec("web", 2)) // no nodes at all
	h.converge()
	if n := len(h.desired(svc)); n != 2 {
		t.Fatalf("want 2 pending tasks\n%s", h.dump(svc))
	}
	h.scale(svc, 0)
	h.converge()
	for _, tk := range h.tasks(svc) {
		if tk.DesiredState != swarm.TaskStateShutdown || tk.Status.State != swarm.TaskStateShutdown {
			t.Errorf("unplaced task after scale to 0: desired %s, state %s", tk.DesiredState, tk.Status.State)
		}
	}
	// A node appears: nothing of the scaled-down service lands on it.
	h.addNodes("n1")
	h.converge()
	if n := len(h.observedRunning(svc)); n != 0 {
		t.Fatalf("scaled-down tasks started when a node appeared\n%s", h.dump(svc))
	}
}

func TestReservationsLimitPlacement(t *testing.T) {
	h := newHarness(t)
	h.addNode("n1", capacity(2))
	h.addNode("n2", capacity(1))
	svc := h.create(replicatedSpec("web", 4, reserveCPU(1)))
	h.converge()
	if n := len(h.running(svc)); n != 3 {
		t.Fatalf("want 3 running (capacity for 3), got %d\n%s", n, h.dump(svc))
	}
	var waiting []*state.Task
	for _, tk := range h.desired(svc) {
		if tk.Status.State == swarm.TaskStatePending {
			waiting = append(waiting, tk)
		}
	}
	if len(waiting) != 1 || !strings.Contains(waiting[0].Status.Err, "insufficient resources") {
		t.Fatalf("want one task waiting for resources\n%s", h.dump(svc))
	}
}

// A huge service is created in bounded passes, and its removal stops the
// creation at once: no pass creates more than MaxTasksPerPass tasks, and
// none creates a task for a service removed before it.
func TestHugeServiceCreatedInBoundedPassesAndStopsOnRemoval(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	id := h.create(replicatedSpec("huge", 3*MaxTasksPerPass+7))
	if err := h.o.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(h.tasks(id)); got != MaxTasksPerPass {
		t.Fatalf("the first pass created %d tasks, want the bound %d", got, MaxTasksPerPass)
	}
	h.remove(id)
	h.pass()
	for _, tk := range h.tasks(id) {
		if tk.DesiredState != swarm.TaskStateRemove {
			t.Fatalf("task %s (slot %d) of the removed service is %s, want remove", tk.ID, tk.Slot, tk.DesiredState)
		}
	}
	if got := len(h.tasks(id)); got > MaxTasksPerPass {
		t.Fatalf("after removal the service has %d tasks; creation went on", got)
	}
}
