package orchestrator

import (
	"sort"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// placeMade places the tasks the pass made, and encodes their creates: a
// new task is written already on its node (or saying why it could not
// be placed), so each task costs one Raft write, applied once by each
// manager, instead of a create and then a placement a pass later. The
// pending tasks the pass's ops leave alone are placed with them. The
// creates go last, grouped by node (see schedule).
//
// A pass that leaves tasks to make (MaxTasksPerPass) writes its tasks
// pending, and the last pass places them all: spreading puts some of
// every pass's tasks on every node, and each placing pass would be one
// more answer to every node's long-poll carrying its whole set (a
// 50,000-replica service on 5,000 nodes: 30 tasks sent per node instead
// of 10).
// It returns the ops to write and how many of the made tasks it placed.
func (o *Orchestrator) placeMade(v *view, ops []state.Op) ([]state.Op, int) {
	if len(v.made) == 0 {
		return ops, 0
	}
	touched := make(map[string]bool, len(ops))
	var made []*state.Task
	out := make([]state.Op, 0, len(ops))
	for _, op := range ops {
		touched[op.ID] = true
		if t := v.made[op.ID]; t != nil && op.Table == state.TableTasks && op.Action == state.ActionCreate {
			made = append(made, t)
			continue
		}
		out = append(out, op)
	}
	placed := 0
	if !v.more {
		var patches []state.Op
		patches, placed = o.schedule(v, made, touched)
		out = append(out, patches...)
	}
	for _, t := range made {
		out = append(out, state.NewOp(state.TableTasks, state.ActionCreate, t, 0))
	}
	// Encoded, the tasks are garbage: the pass holds its view until the
	// write commits, and 10,000 new tasks are megabytes.
	v.made = nil
	return out, placed
}

// schedule places the view's pending tasks (but those in skip, which the
// pass's own ops change) and the tasks the pass made, in one batch, and
// records why the others could not be placed: patches for the view's
// tasks; the made tasks are changed in place, and sorted by their node.
// It returns the patches and how many of the made tasks it placed.
func (o *Orchestrator) schedule(v *view, made []*state.Task, skip map[string]bool) (ops []state.Op, placedMade int) {
	var pending []*state.Task
	for _, tasks := range v.tasks {
		for _, t := range tasks {
			switch {
			case skip[t.ID]:
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
	if len(pending)+len(made) == 0 || o.sched == nil {
		return ops, 0
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
	placed, unplaced := o.sched.Place(nodes, assigned, append(pending[:len(pending):len(pending)], made...))
	// Placements are written grouped by node: a Raft entry then carries
	// whole nodes' worth of tasks, and each node's assignment long-poll
	// wakes once instead of once per entry.
	byNode := func(ts []*state.Task) {
		sort.SliceStable(ts, func(i, j int) bool { return placed[ts[i].ID] < placed[ts[j].ID] })
	}
	byNode(pending)
	for _, t := range pending {
		if nodeID, ok := placed[t.ID]; ok {
			ops = append(ops, assignOp(v, t, nodeID))
		} else if why, ok := unplaced[t.ID]; ok && t.Status.Err != why {
			ops = append(ops, state.NewPatch(state.TableTasks, t.ID, state.PatchTaskUnplaced, why))
		}
	}
	byNode(made)
	for _, t := range made {
		if nodeID, ok := placed[t.ID]; ok {
			t.NodeID, t.Status = nodeID, assignedStatus(v)
			placedMade++
		} else if why, ok := unplaced[t.ID]; ok {
			t.Status.Err = why
		}
	}
	return ops, placedMade
}

func assignOp(v *view, t *state.Task, nodeID string) state.Op {
	return state.NewPatch(state.TableTasks, t.ID, state.PatchTaskAssign, state.TaskAssign{NodeID: nodeID, Status: assignedStatus(v)})
}

func assignedStatus(v *view) swarm.TaskStatus {
	return swarm.TaskStatus{Timestamp: v.now.UTC(), State: swarm.TaskStateAssigned, Message: "scheduler assigned task to node"}
}
