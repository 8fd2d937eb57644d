package orchestrator

import (
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// replacedFor counts the tasks shut down because their node went Down.
func (h *harness) replacedFor(svc string) int {
	n := 0
	for _, t := range h.tasks(svc) {
		if t.ShutdownReason == state.ReasonNodeDown {
			n++
		}
	}
	return n
}

// twoPerNode makes n nodes and a service of two tasks on each, restarted
// only after an hour (so only node loss replaces them), converged.
func twoPerNode(h *harness, n int) (ids []string, svc string) {
	for i := range n {
		ids = append(ids, fmt.Sprintf("n%02d", i))
	}
	h.addNodes(ids...)
	svc = h.create(replicatedSpec("web", uint64(2*n), restart(swarm.RestartPolicyConditionAny, time.Hour, 0, 0)))
	h.converge()
	return ids, svc
}

// When a third of the nodes go Down at once, their tasks are replaced
// one node at a time, every massDownRelease; nodes that come back keep
// the tasks not yet replaced. Fewer Down: all at once, as before.
func TestMassDownPacesReplacement(t *testing.T) {
	h := newHarness(t)
	ids, svc := twoPerNode(h, 12)
	h.expectReplicas(svc, 24)
	if got := byNode(h.running(svc)); got["n00"] != 2 {
		t.Fatalf("want 2 tasks per node, got %v", got)
	}

	var kept []string // n02's: it comes back before its turn
	for _, tk := range h.running(svc) {
		if tk.NodeID == ids[2] {
			kept = append(kept, tk.ID)
		}
	}
	for _, id := range ids[:4] { // 4 of 12: a third
		h.setNodeState(id, swarm.NodeStateDown)
	}
	h.converge()
	if got := h.replacedFor(svc); got != 2 {
		t.Fatalf("a third of the nodes Down: %d tasks replaced at once, want one node's 2\n%s", got, h.dump(svc))
	}
	if h.o.wake.IsZero() || h.o.wake.After(h.now.Add(massDownRelease)) {
		t.Errorf("next release due at %v, want by %v", h.o.wake, h.now.Add(massDownRelease))
	}
	h.advance(massDownRelease)
	h.converge()
	if got := h.replacedFor(svc); got != 4 {
		t.Fatalf("after %v: %d tasks replaced, want two nodes' 4", massDownRelease, got)
	}

	// Two come back before their turn: their tasks stay; the others' go
	// at once now that fewer than a third are Down.
	h.setNodeState(ids[2], swarm.NodeStateReady)
	h.converge()
	if got := h.replacedFor(svc); got != 6 {
		t.Fatalf("3 of 12 Down: %d tasks replaced, want 6 (every Down node's)", got)
	}
	h.expectReplicas(svc, 24)
	for _, id := range kept {
		if tk := h.task(id); tk.DesiredState != swarm.TaskStateRunning || tk.Status.State != swarm.TaskStateRunning {
			t.Errorf("task %s of the node back before its turn: desired %s, %s; want it kept running", id, tk.DesiredState, tk.Status.State)
		}
	}
}

// A small cluster is not paced: losing half of four nodes is losing them.
func TestMassDownNotInSmallClusters(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2", "n3", "n4")
	svc := h.create(replicatedSpec("web", 8, restart(swarm.RestartPolicyConditionAny, time.Hour, 0, 0)))
	h.converge()
	h.setNodeState("n1", swarm.NodeStateDown)
	h.setNodeState("n2", swarm.NodeStateDown)
	h.converge()
	if got := h.replacedFor(svc); got != 4 {
		t.Fatalf("half of a 4-node cluster Down: %d tasks replaced, want all 4", got)
	}
	h.expectReplicas(svc, 8)
}

// Once every Down node's tasks were let go, no pass is due for pacing:
// the orchestrator sleeps until the state changes.
func TestMassDownSleepsOnceAllReleased(t *testing.T) {
	h := newHarness(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, fmt.Sprintf("n%02d", i))
	}
	h.addNodes(ids...)
	svc := h.create(replicatedSpec("web", 10))
	h.converge()
	for _, id := range ids[:4] {
		h.setNodeState(id, swarm.NodeStateDown)
	}
	for range 4 {
		h.converge()
		h.advance(massDownRelease)
	}
	h.converge()
	if got := h.replacedFor(svc); got != 4 {
		t.Fatalf("%d tasks replaced after four turns, want 4", got)
	}
	if !h.o.wake.IsZero() {
		t.Errorf("every Down node released, yet a pass is due at %v", h.o.wake)
	}
}

// Nodes silent past their last beat, not yet Down, count towards the
// third: when a third fall silent over a few seconds, the first marked
// Down are not all replaced at once. Without them, all are.
func TestMassDownCountsSilentNodes(t *testing.T) {
	for _, silent := range []int{0, 2} {
		h := newHarness(t)
		h.o.SetLateNodes(func() int { return silent })
		ids, svc := twoPerNode(h, 12)
		for _, id := range ids[:2] { // 2 Down, and silent more: 4 of 12
			h.setNodeState(id, swarm.NodeStateDown)
		}
		h.converge()
		want := 4 // both Down nodes' 2 tasks
		if silent > 0 {
			want = 2 // one node's, the others' in turn
		}
		if got := h.replacedFor(svc); got != want {
			t.Fatalf("2 of 12 Down, %d silent: %d tasks replaced at once, want %d\n%s", silent, got, want, h.dump(svc))
		}
	}
}
