package agent

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// pending peeks at the report queued for a task without taking it.
func (h *execHarness) pending(id string) (swarm.TaskStatus, bool) {
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	st, ok := h.e.reports[id]
	return st, ok
}

// drainWake empties the wake channel.
func drainWake(e *Executor) {
	for {
		select {
		case <-e.Wake():
		default:
			return
		}
	}
}

func woken(e *Executor) bool {
	select {
	case <-e.Wake():
		return true
	case <-time.After(waitFor):
		return false
	}
}

func TestRequeueKeepsNewerReports(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	h.e.Sync(assigned(mkTask("t1", 1, swarm.TaskStateRunning), mkTask("t2", 2, swarm.TaskStateRunning)))
	h.waitState("t1", swarm.TaskStateRunning)
	h.waitState("t2", swarm.TaskStateRunning)
	if us := h.e.Reports(); len(us) != 0 {
		t.Fatalf("reports left: %+v", us)
	}

	// A batch taken for sending...
	sent := []nodeapi.TaskStatusUpdate{
		{TaskID: "t1", Status: h.last("t1")},
		{TaskID: "t2", Status: h.last("t2")},
	}
	// ...while t1 moves on; then the send fails.
	if err := drv.Exit("t1", 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "t1's exit to be queued", func() bool {
		st, ok := h.pending("t1")
		return ok && st.State == swarm.TaskStateComplete
	})
	h.e.Requeue(sent)
	got := byTask(h.e.Reports())
	if got["t1"].State != swarm.TaskStateComplete {
		t.Errorf("t1: %q, want the newer report (complete) to win over the requeued one", got["t1"].State)
	}
	if got["t2"].State != swarm.TaskStateRunning || !got["t2"].Timestamp.Equal(sent[1].Status.Timestamp) {
		t.Errorf("t2: %+v, want the requeued report", got["t2"])
	}
	if len(got) != 2 {
		t.Errorf("reports %+v", got)
	}

	// Requeueing twice keeps one report per task.
	h.e.Requeue(sent)
	h.e.Requeue(sent)
	if us := h.e.Reports(); len(us) != 2 {
		t.Errorf("%d reports after a double requeue, want 2", len(us))
	}
	if us := h.e.Reports(); len(us) != 0 {
		t.Errorf("Reports does not clear: %+v", us)
	}
}

func TestWakeOnNewReport(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	drainWake(h.e)
	h.e.Sync(assigned(mkTask("t1", 1, swarm.TaskStateRunning)))
	if !woken(h.e) {
		t.Fatal("no wake after a new report")
	}
	h.waitState("t1", swarm.TaskStateRunning)
	drainWake(h.e)
	if err := drv.Exit("t1", 1); err != nil {
		t.Fatal(err)
	}
	if !woken(h.e) {
		t.Fatal("no wake after the task ended")
	}
	h.waitState("t1", swarm.TaskStateFailed)
}

func TestSyncResendsWhatManagersMissed(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	t1, t2 := mkTask("t1", 1, swarm.TaskStateRunning), mkTask("t2", 2, swarm.TaskStateRunning, "FAKE_EXIT_CODE=4")
	h.e.Sync(assigned(t1, t2))
	running := h.waitState("t1", swarm.TaskStateRunning)
	failed := h.waitState("t2", swarm.TaskStateFailed)

	// The managers' view is current: nothing to send.
	drainWake(h.e)
	h.e.Sync(assigned(withObserved(t1, swarm.TaskStateRunning), withObserved(t2, swarm.TaskStateFailed)))
	if us := h.e.Reports(); len(us) != 0 {
		t.Fatalf("reports with the managers up to date: %+v", us)
	}

	// A leader took the reports and failed before writing them: the view
	// of the new one is older. The current statuses are sent again.
	h.e.Sync(assigned(withObserved(t1, swarm.TaskStateStarting), withObserved(t2, swarm.TaskStateRunning)))
	if !woken(h.e) {
		t.Error("no wake for the reports sent again")
	}
	got := byTask(h.e.Reports())
	if st := got["t1"]; st.State != swarm.TaskStateRunning || !st.Timestamp.Equal(running.Timestamp) || st.ContainerStatus == nil {
		t.Errorf("t1 sent again as %+v, want %+v", st, running)
	}
	if st := got["t2"]; st.State != swarm.TaskStateFailed || st.Err != failed.Err {
		t.Errorf("t2 sent again as %+v, want %+v", st, failed)
	}
	if n := startCount(drv); n != 2 {
		t.Errorf("%d starts, want 2 (no restart because of an old view)", n)
	}

	// A view that is ahead of the node (it cannot know better, but must not
	// pull the node's state) changes nothing.
	h.e.Sync(assigned(withObserved(t1, swarm.TaskStateComplete), withObserved(t2, swarm.TaskStateFailed)))
	if us := h.e.Reports(); len(us) != 0 {
		t.Errorf("reports after a view ahead of the node: %+v", us)
	}
	if running, _, _ := drv.Stats(); running != 1 {
		t.Errorf("%d running, want t1 still running", running)
	}
}

func TestResendAll(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	h.e.Sync(assigned(
		mkTask("t1", 1, swarm.TaskStateRunning),
		mkTask("t2", 2, swarm.TaskStateRunning, "FAKE_EXIT_CODE=0"),
		withDesired(mkTask("t3", 3, swarm.TaskStateRunning), swarm.TaskStateShutdown),
	))
	want := map[string]swarm.TaskStatus{
		"t1": h.waitState("t1", swarm.TaskStateRunning),
		"t2": h.waitState("t2", swarm.TaskStateComplete),
		"t3": h.waitState("t3", swarm.TaskStateShutdown),
	}
	if us := h.e.Reports(); len(us) != 0 {
		t.Fatalf("reports left: %+v", us)
	}
	drainWake(h.e)
	h.e.ResendAll()
	if !woken(h.e) {
		t.Error("no wake after ResendAll")
	}
	got := byTask(h.e.Reports())
	if len(got) != len(want) {
		t.Errorf("ResendAll queued %d reports, want %d: %+v", len(got), len(want), got)
	}
	for id, st := range want {
		if g := got[id]; g.State != st.State || !g.Timestamp.Equal(st.Timestamp) {
			t.Errorf("%s: resent %+v, want the current status %+v", id, g, st)
		}
	}
	// Nothing dropped from the set is resent.
	h.e.Sync(assigned(withObserved(mkTask("t1", 1, swarm.TaskStateRunning), swarm.TaskStateRunning)))
	h.e.Reports()
	h.e.ResendAll()
	if got := byTask(h.e.Reports()); len(got) != 1 || got["t1"].State != swarm.TaskStateRunning {
		t.Errorf("after t2 and t3 were dropped, ResendAll queued %+v", got)
	}
}
