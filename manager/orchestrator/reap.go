package orchestrator

import (
	"sort"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

const defaultHistory = 5

// reap deletes old task history: per slot (or node) it keeps the newest
// retention-limit tasks that are done; tasks of removed services go once
// they stopped, or at once when they never reached a node or their node
// is gone.
func (o *Orchestrator) reap(v *view) []state.Op {
	limit := defaultHistory
	if v.cluster != nil && v.cluster.Spec.Orchestration.TaskHistoryRetentionLimit != nil {
		limit = int(*v.cluster.Spec.Orchestration.TaskHistoryRetentionLimit)
	}
	var ops []state.Op
	for serviceID, tasks := range v.tasks {
		if _, ok := v.byID[serviceID]; !ok {
			for _, t := range tasks {
				n := v.nodes[t.NodeID]
				if Terminal(t.Status.State) || t.NodeID == "" || n == nil || n.Status.State == swarm.NodeStateDown ||
					t.Status.State == swarm.TaskStatePending || t.Status.State == swarm.TaskStateAssigned && n == nil {
					ops = append(ops, state.NewOp(state.TableTasks, state.ActionDelete, t, 0))
				}
			}
			continue
		}
		// Only slots (nodes) with history are looked at again: an idle
		// pass over 10,000 tasks with none allocates nothing here.
		var groups map[slotKey][]*state.Task
		for _, t := range tasks {
			if !active(t) && Terminal(t.Status.State) || !active(t) && t.NodeID == "" {
				if groups == nil {
					groups = map[slotKey][]*state.Task{}
				}
				groups[keyOf(t)] = append(groups[keyOf(t)], t)
			}
		}
		if groups == nil {
			continue
		}
		live := map[slotKey]bool{} // of those, the ones with a task still wanted
		for _, t := range tasks {
			if active(t) {
				if _, ok := groups[keyOf(t)]; ok {
					live[keyOf(t)] = true
				}
			}
		}
		keep := limit
		if s := v.byID[serviceID]; s != nil {
			if rp := s.Spec.TaskTemplate.RestartPolicy; rp != nil && rp.MaxAttempts != nil && int(*rp.MaxAttempts)+1 > keep {
				keep = int(*rp.MaxAttempts) + 1
			}
		}
		if keep < 1 {
			keep = 1 // the latest ended task decides the slot's restart policy
		}
		for k, done := range groups {
			limit := keep
			if live[k] && limit == defaultHistoryOr(v) && limit > 1 {
				limit-- // the running task counts, as in swarm: N rows per slot
			}
			if len(done) <= limit {
				continue
			}
			sort.Slice(done, func(i, j int) bool { return done[i].CreatedAt.After(done[j].CreatedAt) })
			for _, t := range done[limit:] {
				ops = append(ops, state.NewOp(state.TableTasks, state.ActionDelete, t, 0))
			}
		}
	}
	return ops
}

// slotKey is a replicated task's slot, or a global task's node (slot 0).
type slotKey struct {
	slot int
	node string
}

func keyOf(t *state.Task) slotKey {
	if t.Slot == 0 {
		return slotKey{node: t.NodeID}
	}
	return slotKey{slot: t.Slot}
}

// orphans: nothing yet; tasks of removed services are handled by reap.
func (o *Orchestrator) orphans(v *view) []state.Op {
	var ops []state.Op
	for serviceID, tasks := range v.tasks {
		if _, ok := v.byID[serviceID]; ok {
			continue
		}
		for _, t := range tasks {
			if t.DesiredState != swarm.TaskStateRemove {
				ops = append(ops, state.NewPatch(state.TableTasks, t.ID, state.PatchTaskShutdown,
					state.TaskShutdown{Desired: swarm.TaskStateRemove, Reason: state.ReasonRemoved}))
			}
		}
	}
	return ops
}

func defaultHistoryOr(v *view) int {
	if v.cluster != nil && v.cluster.Spec.Orchestration.TaskHistoryRetentionLimit != nil {
		return int(*v.cluster.Spec.Orchestration.TaskHistoryRetentionLimit)
	}
	return defaultHistory
}
