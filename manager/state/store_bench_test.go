package state_test

import (
	"fmt"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// BenchmarkApplyHeartbeats applies one heartbeat tick of 1,000 nodes in
// which nothing changes: it makes no events and should allocate no more
// than the writes themselves.
func BenchmarkApplyHeartbeats(b *testing.B) {
	s := state.NewStore()
	var ops []state.Op
	for i := range 1000 {
		ops = append(ops, state.NewOp(state.TableNodes, state.ActionCreate, node(fmt.Sprintf("n%d", i), "h"), 0))
	}
	if err := s.Apply(1, batch(t0, ops...)); err != nil {
		b.Fatal(err)
	}
	ready := state.NodeStatus{Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0.1"}}
	var hb []state.Op
	for i := range 1000 {
		hb = append(hb, state.NewPatch(state.TableNodes, fmt.Sprintf("n%d", i), state.PatchNodeStatus, ready))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(uint64(i+2), batch(t1, hb...)); err != nil {
			b.Fatal(err)
		}
	}
}
