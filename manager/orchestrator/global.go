package orchestrator

import (
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// reconcileGlobal keeps one task on every eligible node: new nodes get
// one, drained or removed nodes lose theirs, paused nodes keep what they
// run but get nothing new.
func (o *Orchestrator) reconcileGlobal(v *view, s *state.Service) []state.Op {
	byNode := map[string][]*state.Task{}
	for _, t := range v.tasks[s.ID] {
		byNode[t.NodeID] = append(byNode[t.NodeID], t)
	}
	var ops []state.Op
	for nodeID, tasks := range byNode {
		n := v.nodes[nodeID]
		if n == nil || n.Spec.Availability == swarm.NodeAvailabilityDrain || !o.sched.Eligible(n, s) {
			reason := state.ReasonDrain
			if n == nil {
				reason = state.ReasonRemoved
			}
			for _, t := range tasks {
				if active(t) {
					ops = append(ops, shutdownOp(t, reason))
				}
			}
			continue
		}
	}
	for id, n := range v.nodes {
		if n.Spec.Availability == swarm.NodeAvailabilityDrain || !o.sched.Eligible(n, s) {
			continue
		}
		tasks := byNode[id]
		hasActive := false
		for _, t := range tasks {
			hasActive = hasActive || active(t)
		}
		if !hasActive && n.Spec.Availability != swarm.NodeAvailabilityActive {
			continue // paused: keeps what it runs, gets nothing new
		}
		ops = append(ops, o.reconcileSlot(v, s, tasks, 0, id)...)
	}
	return ops
}
