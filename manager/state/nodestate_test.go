package state_test

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// StateSince moves only when the node's state changes, whoever writes it,
// so "Down for how long" is not reset by a label change.
func TestNodeStateSince(t *testing.T) {
	s := patchStore(t) // n1, n2 created at t0
	if got := s.Node("n1").StateSince; !got.Equal(t0) {
		t.Fatalf("created node: StateSince %v, want %v", got, t0)
	}
	t2, t3 := t1.Add(time.Minute), t1.Add(2*time.Minute)
	down := state.NodeStatus{Status: swarm.NodeStatus{State: swarm.NodeStateDown, Message: "heartbeat failure"}}
	mustApply(t, s, s.Index()+1, batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeStatus, down)))
	if got := s.Node("n1").StateSince; !got.Equal(t1) {
		t.Fatalf("after going Down at %v: StateSince %v", t1, got)
	}
	// The same state again, and a user's spec change: the clock stays.
	mustApply(t, s, s.Index()+1, batch(t2, state.NewPatch(state.TableNodes, "n1", state.PatchNodeStatus, down)))
	u := s.Node("n1").Copy()
	u.Spec.Labels = map[string]string{"k": "v"}
	mustApply(t, s, s.Index()+1, batch(t2, state.NewOp(state.TableNodes, state.ActionUpdate, u, 0)))
	if got := s.Node("n1").StateSince; !got.Equal(t1) {
		t.Fatalf("after writes that keep it Down: StateSince %v, want still %v", got, t1)
	}
	ready := state.NodeStatus{Status: swarm.NodeStatus{State: swarm.NodeStateReady}}
	mustApply(t, s, s.Index()+1, batch(t3, state.NewPatch(state.TableNodes, "n1", state.PatchNodeStatus, ready)))
	if got := s.Node("n1").StateSince; !got.Equal(t3) {
		t.Fatalf("after coming back at %v: StateSince %v", t3, got)
	}
}

func TestPatchNodeAddr(t *testing.T) {
	s := patchStore(t)
	m := s.Node("n2").Copy()
	m.ManagerStatus = &swarm.ManagerStatus{Addr: m.Addr, Reachability: swarm.ReachabilityReachable}
	mustApply(t, s, s.Index()+1, batch(t1, state.NewOp(state.TableNodes, state.ActionUpdate, m, 0)))
	mustApply(t, s, s.Index()+1, batch(t1,
		state.NewPatch(state.TableNodes, "n1", state.PatchNodeAddr, "10.0.0.9:2377"),
		state.NewPatch(state.TableNodes, "n2", state.PatchNodeAddr, "10.0.0.8:4000")))
	if n := s.Node("n1"); n.Addr != "10.0.0.9:2377" || n.ManagerStatus != nil {
		t.Errorf("worker after the move: addr %s, manager status %+v", n.Addr, n.ManagerStatus)
	}
	if n := s.Node("n2"); n.Addr != "10.0.0.8:4000" || n.ManagerStatus.Addr != "10.0.0.8:4000" || n.ManagerStatus.Reachability != swarm.ReachabilityReachable {
		t.Errorf("manager after the move: addr %s, manager status %+v", n.Addr, n.ManagerStatus)
	}
}
