package state_test

import (
	"bytes"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// Reshaped fires for every change the orchestrator decides on, and not for
// a task's progress towards running outside an update.
func TestReshaped(t *testing.T) {
	svc := &state.Service{}
	svc.ID = "svc"
	svc.Spec.Name = "web"
	s := patchStore(t)
	mustApply(t, s, s.Index()+1, batch(t1, state.NewOp(state.TableServices, state.ActionCreate, svc, 0)))
	step := func(name string, want bool, ops ...state.Op) {
		t.Helper()
		ch := s.Reshaped()
		changed := s.Changed()
		mustApply(t, s, s.Index()+1, batch(t1, ops...))
		if !closed(changed) {
			t.Fatalf("%s: Changed did not fire", name)
		}
		if got := closed(ch); got != want {
			t.Errorf("%s: Reshaped fired = %v, want %v", name, got, want)
		}
	}
	step("placement", true, assignPatch("a", "n1"), assignPatch("b", "n1"), assignPatch("c", "n2"))
	step("accepted", false, statusPatch("a", swarm.TaskStateAccepted))
	step("running", false, statusPatch("a", swarm.TaskStateRunning), statusPatch("b", swarm.TaskStateRunning))
	step("a stale report (nothing changes)", false, statusPatch("a", swarm.TaskStateStarting))
	step("failed", true, statusPatch("b", swarm.TaskStateFailed))
	step("shutdown asked", true, shutdownPatch("a", swarm.TaskStateShutdown, state.ReasonScale))
	step("a node", true, state.NewOp(state.TableNodes, state.ActionUpdate, node("n2", "h2"), 0))

	// During an update every report counts: the updater waits for the
	// new tasks to run.
	svc.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}
	step("update started", true, state.NewOp(state.TableServices, state.ActionUpdate, svc, 0))
	step("running in an update", true, statusPatch("c", swarm.TaskStateRunning))
}

// A snapshot restored may change anything.
func TestReshapedOnRestore(t *testing.T) {
	s := patchStore(t)
	var buf bytes.Buffer
	if err := s.Snapshot().Write(&buf); err != nil {
		t.Fatal(err)
	}
	r := state.NewStore()
	ch := r.Reshaped()
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if !closed(ch) {
		t.Error("Reshaped did not fire on Restore")
	}
}
