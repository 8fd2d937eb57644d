package orchestrator

import (
	"sort"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// schedule places pending tasks in one batch and records why the others
// could not be placed.
func (o *Orchestrator) schedule(v *view) []state.Op {
	var pending []*state.Task
	var ops []state.Op
	for _, tasks := range v.tasks {
		for _, t := range tasks {
			switch {
			case !active(t):
				if t.Status.State == swarm.TaskStatePending && t.NodeID == "" {
					// Never placed and no longer wanted: nothing will report it.
					ops = append(ops, state.NewPatch(state.TableTasks, t.ID, state.PatchTaskStatus,
						swarm.TaskStatus{Timestamp: v.now.UTC(), State: swarm.TaskStateShutdown, Message: "shut down before it was placed"}))
				}
			case t.Status.State == swarm.TaskStatePending:
				// Global tasks name their node; the scheduler still checks
				// it (readiness, resources, platform, driver).
				pending = append(pending, t)
			}
		}
	}
	if len(pending) == 0 || o.sched == nil {
		return ops
	}
	// What holds reservations is gathered only when there is something
	// to place: most passes have nothing.
	var assigned []*state.Task
	for _, tasks := range v.tasks {
		for _, t := range tasks {
			switch {
			case !active(t) && t.NodeID != "" && !Terminal(t.Status.State) && t.Status.State != swarm.TaskStatePending:
				assigned = append(assigned, t) // still holds its reservation
			case active(t) && t.Status.State != swarm.TaskStatePending && t.NodeID != "" && !Terminal(t.Status.State):
				assigned = append(assigned, t)
			}
		}
	}
	nodes := make([]*state.Node, 0, len(v.nodes))
	for _, n := range v.nodes {
		nodes = append(nodes, n)
	}
	placed, unplaced := o.sched.Place(nodes, assigned, pending)
	// Placements are written grouped by node: a Raft entry then carries
	// whole nodes' worth of tasks, and each node's assignment long-poll
	// wakes once instead of once per entry.
	sort.SliceStable(pending, func(i, j int) bool { return placed[pending[i].ID] < placed[pending[j].ID] })
	for _, t := range pending {
		if nodeID, ok := placed[t.ID]; ok {
			ops = append(ops, assignOp(v, t, nodeID))
		} else if why, ok := unplaced[t.ID]; ok && t.Status.Err != why {
			ops = append(ops, state.NewPatch(state.TableTasks, t.ID, state.PatchTaskUnplaced, why))
		}
	}
	return ops
}

func assignOp(v *view, t *state.Task, nodeID string) state.Op {
	return state.NewPatch(state.TableTasks, t.ID, state.PatchTaskAssign, state.TaskAssign{NodeID: nodeID,
		Status: swarm.TaskStatus{Timestamp: v.now.UTC(), State: swarm.TaskStateAssigned, Message: "scheduler assigned task to node"}})
}
