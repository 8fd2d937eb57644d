package dispatcher

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// A node's assignment set comes from one view: a service removed after
// the view was taken still names its task (read in separate transactions,
// the task came back without its service's name), and a task created
// after it is not included.
func TestAssignmentsReadOneView(t *testing.T) {
	s := state.NewStore()
	apply := func(index uint64, ops ...state.Op) {
		t.Helper()
		if err := s.Apply(index, state.Batch{Ops: ops, Time: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}
	task := func(id string) *state.Task {
		tk := &state.Task{}
		tk.ID, tk.ServiceID, tk.NodeID = id, "svc", "a"
		tk.DesiredState = swarm.TaskStateRunning
		tk.Status.State = swarm.TaskStateAssigned
		return tk
	}
	svc := &state.Service{}
	svc.ID = "svc"
	svc.Spec.Name = "web"
	apply(1, state.NewOp(state.TableServices, state.ActionCreate, svc, 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("t1"), 0))

	v := s.View()
	apply(2, state.NewOp(state.TableServices, state.ActionDelete, svc, 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("t2"), 0))

	got := assignmentsIn(v, "a")
	if len(got.Tasks) != 1 || got.Tasks[0].Task.ID != "t1" || got.Tasks[0].ServiceName != "web" {
		t.Errorf("assignments from the view before the removal: %+v, want task t1 of service web alone", got.Tasks)
	}
	if now := assignmentsIn(s.View(), "a"); len(now.Tasks) != 2 || now.Fingerprint == got.Fingerprint {
		t.Errorf("assignments now: %+v (fingerprint %s), want t1 and t2 with a new fingerprint", now.Tasks, now.Fingerprint)
	}
}
