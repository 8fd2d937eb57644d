package state_test

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

func taskIDs(ts []*state.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

// A task is listed under the node and service it has now, and nowhere
// once deleted; a refused batch leaves the indexes as they were, and a
// view keeps its moment's.
func TestIndexesFollowWrites(t *testing.T) {
	s := patchStore(t) // tasks a, b, c pending on service svc
	assign := func(id, node string) state.Op {
		return state.NewPatch(state.TableTasks, id, state.PatchTaskAssign,
			state.TaskAssign{NodeID: node, Status: swarm.TaskStatus{Timestamp: t1, State: swarm.TaskStateAssigned}})
	}
	mustApply(t, s, 2, batch(t1, assign("a", "n1"), assign("b", "n1"), assign("c", "n2")))
	if got := taskIDs(s.TasksByNode("n1")); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("n1 has %v, want [a b]", got)
	}
	before := s.View()

	moved := s.Task("b").Copy()
	moved.NodeID = "n2"
	moved.ServiceID = "other"
	mustApply(t, s, 3, batch(t1,
		state.NewOp(state.TableTasks, state.ActionUpdate, moved, 0),
		state.NewOp(state.TableTasks, state.ActionDelete, s.Task("a"), 0)))
	if got := taskIDs(s.TasksByNode("n1")); len(got) != 0 {
		t.Errorf("n1 has %v after its tasks moved and went away", got)
	}
	if got := taskIDs(s.TasksByNode("n2")); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("n2 has %v, want [b c]", got)
	}
	if got := taskIDs(s.TasksByService("svc")); !slices.Equal(got, []string{"c"}) {
		t.Errorf("svc has %v, want [c]", got)
	}
	if got := taskIDs(s.TasksByService("other")); !slices.Equal(got, []string{"b"}) {
		t.Errorf("other has %v, want [b]", got)
	}
	if got := taskIDs(before.TasksByNode("n1")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("a view from before the write sees n1 with %v, want [a b]", got)
	}

	// Refused (c already exists): the move of c in the same batch is undone.
	back := s.Task("c").Copy()
	back.NodeID = "n1"
	if err := s.Apply(4, batch(t1,
		state.NewOp(state.TableTasks, state.ActionUpdate, back, 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("c"), 0))); err == nil {
		t.Fatal("creating an existing task was not refused")
	}
	mustApply(t, s, 5, batch(t1)) // what the next batch publishes
	if got := taskIDs(s.TasksByNode("n1")); len(got) != 0 {
		t.Errorf("n1 has %v after a refused batch", got)
	}
	if got := taskIDs(s.TasksByNode("n2")); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("n2 has %v after a refused batch, want [b c]", got)
	}
}

// A write that keeps a task's node and service (a status report) does not
// touch the indexes, yet they list the task as it is now; a view from
// before the write lists it as it was then.
func TestIndexesListCurrentVersions(t *testing.T) {
	s := patchStore(t) // tasks a, b, c pending on service svc
	mustApply(t, s, 2, batch(t1, state.NewPatch(state.TableTasks, "a", state.PatchTaskAssign,
		state.TaskAssign{NodeID: "n1", Status: swarm.TaskStatus{Timestamp: t1, State: swarm.TaskStateAssigned}})))
	before := s.View()
	mustApply(t, s, 3, batch(t1, state.NewPatch(state.TableTasks, "a", state.PatchTaskStatus,
		swarm.TaskStatus{Timestamp: t1, State: swarm.TaskStateRunning})))

	for name, ts := range map[string][]*state.Task{"node": s.TasksByNode("n1"), "service": s.TasksByService("svc")} {
		i := slices.IndexFunc(ts, func(tk *state.Task) bool { return tk.ID == "a" })
		switch {
		case i < 0:
			t.Errorf("by %s: a is not listed (%v)", name, taskIDs(ts))
		case ts[i].Status.State != swarm.TaskStateRunning:
			t.Errorf("by %s: a is %s, want running (its current version)", name, ts[i].Status.State)
		}
	}
	if got := before.TasksByNode("n1"); len(got) != 1 || got[0].Status.State != swarm.TaskStateAssigned {
		t.Errorf("a view from before the report lists n1 with %v, want a assigned", got)
	}
}
