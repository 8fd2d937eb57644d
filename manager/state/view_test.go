package state_test

import (
	"testing"

	"github.com/flotilla-org/flotilla/manager/state"
)

// A view reads one moment: a service removed (with its tasks) after the
// view opened is still there, with its tasks, for every read through the
// view; a fresh read does not see it.
func TestViewIsOneMoment(t *testing.T) {
	s := patchStore(t) // tasks a, b, c of service "svc"
	sv := &state.Service{}
	sv.ID = "svc"
	mustApply(t, s, 2, batch(t0, state.NewOp(state.TableServices, state.ActionCreate, sv, 0)))

	v := s.View()
	if len(v.Services()) != 1 {
		t.Fatal("the view does not see the service")
	}
	mustApply(t, s, 3, batch(t1,
		state.NewOp(state.TableServices, state.ActionDelete, s.Service("svc"), 0),
		state.NewOp(state.TableTasks, state.ActionDelete, s.Task("a"), 0)))
	if got := len(v.TasksByService("svc")); got != 3 {
		t.Errorf("the view's tasks of svc after a later removal: %d, want the 3 of its moment", got)
	}
	if v.Service("svc") == nil || v.Index() != 2 {
		t.Errorf("the view lost the service or moved on: index %d", v.Index())
	}
	if s.Service("svc") != nil || len(s.TasksByService("svc")) != 2 {
		t.Error("a fresh read still sees the removed service or task")
	}
}
