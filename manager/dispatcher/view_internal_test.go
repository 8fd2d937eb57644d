package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
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

	got := assignmentsIn(v, "a", "")
	if len(got.Tasks) != 1 || got.Tasks[0].Task.ID != "t1" || got.Tasks[0].ServiceName != "web" {
		t.Errorf("assignments from the view before the removal: %+v, want task t1 of service web alone", got.Tasks)
	}
	if now := assignmentsIn(s.View(), "a", ""); len(now.Tasks) != 2 || now.Fingerprint == got.Fingerprint {
		t.Errorf("assignments now: %+v (fingerprint %s), want t1 and t2 with a new fingerprint", now.Tasks, now.Fingerprint)
	}
}

// A node that has its set gets the fingerprint alone (when its long-poll
// times out): every node was sent its whole task set every 20 s, only to
// drop it. The fingerprint is the one a node of an earlier version
// computed the set's from, so it does not start over.
func TestAssignmentsKnownSetCarriesNoTasks(t *testing.T) {
	s := state.NewStore()
	tk := &state.Task{}
	tk.ID, tk.ServiceID, tk.NodeID = "t1", "svc", "a"
	tk.DesiredState = swarm.TaskStateRunning
	tk.Status.State = swarm.TaskStateAssigned
	if err := s.Apply(1, state.Batch{Ops: []state.Op{state.NewOp(state.TableTasks, state.ActionCreate, tk, 0)}, Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	full := assignmentsIn(s.View(), "a", "")
	if len(full.Tasks) != 1 || full.Fingerprint == "" {
		t.Fatalf("first answer: %+v, want task t1 and a fingerprint", full)
	}
	// The fingerprint of earlier versions: "ID/desired;" per task, sha256, 12 bytes.
	if sum := sha256.Sum256([]byte("t1/running;")); full.Fingerprint != hex.EncodeToString(sum[:12]) {
		t.Errorf("fingerprint %s differs from earlier versions'", full.Fingerprint)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a long-poll whose time is up
	d := New(s, nil, slog.New(slog.DiscardHandler))
	again := d.Assignments(ctx, "a", full.Fingerprint)
	if again.Fingerprint != full.Fingerprint || len(again.Tasks) != 0 || again.Index != 1 {
		t.Errorf("answer to a node that has its set: %+v, want the same fingerprint, index 1 and no tasks", again)
	}
}
