package orchestrator

import (
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// reconcileReplicated keeps one running task in each of slots 1..N.
func (o *Orchestrator) reconcileReplicated(v *view, s *state.Service) []state.Op {
	want := 0
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		want = int(*r.Replicas)
	}
	slots := slotGroups(v.tasks[s.ID], want)
	var ops []state.Op
	for _, t := range v.tasks[s.ID] {
		if t.Slot > want && active(t) {
			ops = append(ops, shutdownOp(t, state.ReasonScale))
		}
	}
	for slot := 1; slot <= want; slot++ {
		ops = append(ops, o.reconcileSlot(v, s, slots(slot), slot, "")...)
	}
	return ops
}

// slotGroups groups tasks by slot, 1..want, in their order, and returns the
// group of a slot. It sorts by counting into one array: a pass over
// 10,000 slots appending to a map of slices allocated a third of what an
// idle pass did.
func slotGroups(tasks []*state.Task, want int) func(slot int) []*state.Task {
	start := make([]int32, want+2) // start[s]..start[s+1]: slot s's tasks
	for _, t := range tasks {
		if t.Slot >= 1 && t.Slot <= want {
			start[t.Slot+1]++
		}
	}
	for s := 1; s <= want; s++ {
		start[s+1] += start[s]
	}
	sorted := make([]*state.Task, start[want+1])
	next := slices.Clone(start)
	for _, t := range tasks {
		if t.Slot >= 1 && t.Slot <= want {
			sorted[next[t.Slot]] = t
			next[t.Slot]++
		}
	}
	return func(slot int) []*state.Task {
		if start[slot] == start[slot+1] {
			return nil
		}
		return sorted[start[slot]:start[slot+1]:start[slot+1]]
	}
}

// reconcileSlot handles one slot (or, for a global service, one node):
// tasks that ended, tasks on lost or drained nodes, and starting a task
// when none is active.
func (o *Orchestrator) reconcileSlot(v *view, s *state.Service, tasks []*state.Task, slot int, nodeID string) []state.Op {
	var ops []state.Op
	var live []*state.Task
	for _, t := range tasks {
		if !active(t) {
			continue
		}
		n := v.nodes[t.NodeID]
		switch {
		case Terminal(t.Status.State):
			ops = append(ops, shutdownOp(t, state.ReasonEnded))
		case t.NodeID != "" && nodeID == "" && (n == nil || n.Status.State == swarm.NodeStateDown && v.mayReplace(t.NodeID)):
			// A replicated task whose node is gone runs again elsewhere at
			// once: the task did not fail, its node did.
			ops = append(ops, shutdownOp(t, state.ReasonNodeDown))
		case t.NodeID != "" && n != nil && n.Spec.Availability == swarm.NodeAvailabilityDrain:
			ops = append(ops, shutdownOp(t, state.ReasonDrain))
		default:
			live = append(live, t)
		}
	}
	// Two live tasks in a slot happen only in a start-first update: once
	// the new one runs, the old one goes.
	if len(live) > 1 {
		var fresh *state.Task
		for _, t := range live {
			if t.SpecVersion == s.SpecVersion && t.Status.State == swarm.TaskStateRunning {
				fresh = t
			}
		}
		if fresh != nil {
			for _, t := range live {
				if t != fresh {
					ops = append(ops, shutdownOp(t, state.ReasonUpdate))
				}
			}
		}
	}
	if len(live) > 0 {
		return ops
	}
	if nodeID != "" && !nodeUsable(v.nodes[nodeID]) {
		return ops
	}
	// The latest task, with the shutdown we are about to write applied.
	last := latest(tasks)
	if last != nil && len(ops) > 0 {
		for _, op := range ops {
			if op.ID == last.ID {
				c := last.Copy()
				c.DesiredState = swarm.TaskStateShutdown
				c.ShutdownReason = reasonOf(op)
				last = c
			}
		}
	}
	if last != nil && last.ShutdownReason == state.ReasonUpdate && isStale(s, last) && !Terminal(last.Status.State) && isStopFirst(s) && nodeAlive(v, last) {
		return ops // stop-first: the old task must stop before the new one starts
	}
	if ok, _ := startDecision(v, s, tasks, last); ok {
		if v.createBudget <= 0 {
			v.more = true // the next pass goes on, seeing any removal first
			return ops
		}
		op, err := newTask(v, s, slot, nodeID)
		if err != nil {
			v.addrFailed(s, err) // the slot stays empty until an address is free
			return ops
		}
		v.createBudget--
		ops = append(ops, op)
	}
	return ops
}

func reasonOf(op state.Op) string {
	var sd state.TaskShutdown
	if op.Patch != state.PatchTaskShutdown || jsonUnmarshal(op.Object, &sd) != nil {
		return ""
	}
	return sd.Reason
}

func isStale(s *state.Service, t *state.Task) bool { return t.SpecVersion != s.SpecVersion }

// nodeAlive: the task's node can still report on it.
func nodeAlive(v *view, t *state.Task) bool {
	n := v.nodes[t.NodeID]
	return t.NodeID != "" && n != nil && n.Status.State != swarm.NodeStateDown
}
