package dispatcher_test

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/dispatcher"
	"github.com/flotilla-org/flotilla/manager/state"
)

// The dispatcher counts heartbeats and task status reports, counts as
// connected the nodes heard from lately, and times the hand-out of newly
// placed tasks.
func TestMetricsHeartbeatsSessionsAssignments(t *testing.T) {
	_, fr, d := setup(t, "a", "b")
	reg := prometheus.NewRegistry()
	d.SetMetrics(dispatcher.NewMetrics(reg))

	if n := d.Sessions(); n != 0 {
		t.Errorf("sessions before any heartbeat: %d, want 0", n)
	}
	d.Heartbeat("a", addr("a"), ptr(desc("host-a")))
	d.Heartbeat("a", addr("a"), ptr(desc("host-a")))
	d.Heartbeat("b", addr("b"), ptr(desc("host-b")))
	if n := d.Sessions(); n != 2 {
		t.Errorf("sessions after a and b beat: %d, want 2", n)
	}

	placed := time.Now().Add(-50 * time.Millisecond)
	tk := &state.Task{}
	tk.ID, tk.ServiceID, tk.NodeID, tk.DesiredState = "t1", "svc", "a", swarm.TaskStateRunning
	tk.Status = swarm.TaskStatus{State: swarm.TaskStateAssigned, Timestamp: placed}
	if err := fr.apply(state.Batch{Ops: []state.Op{state.NewOp(state.TableTasks, state.ActionCreate, tk, 0)}}); err != nil {
		t.Fatal(err)
	}
	resp := d.Assignments(context.Background(), "a", "")
	if len(resp.Tasks) != 1 {
		t.Fatalf("node a got %d tasks, want 1", len(resp.Tasks))
	}
	d.TaskStatus("a", []nodeapi.TaskStatusUpdate{{TaskID: "t1", Status: swarm.TaskStatus{State: swarm.TaskStateAccepted}}})

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		m := f.GetMetric()[0]
		switch f.GetName() {
		case "flotilla_dispatcher_heartbeats_total":
			if v := m.GetCounter().GetValue(); v != 3 {
				t.Errorf("heartbeats = %v, want 3", v)
			}
		case "flotilla_dispatcher_task_status_reports_total":
			if v := m.GetCounter().GetValue(); v != 1 {
				t.Errorf("status reports = %v, want 1", v)
			}
		case "flotilla_dispatcher_assignment_latency_seconds":
			h := m.GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() < 0.05 {
				t.Errorf("assignment latency: %d samples adding up to %vs, want 1 of at least 0.05s", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	if n := testutil.CollectAndCount(reg); n != 3 {
		t.Errorf("%d dispatcher series, want 3", n)
	}
}
