package orchestrator

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A service's creation counts its tasks created and placed, and every
// pass, including those that wrote nothing.
func TestMetricsCountTasksAndPasses(t *testing.T) {
	h := newHarness(t)
	m := NewMetrics(prometheus.NewRegistry())
	h.o.SetMetrics(m)
	h.addNodes("n1", "n2")
	svc := h.create(replicatedSpec("web", 4))
	h.converge()
	h.expectReplicas(svc, 4)

	if got := testutil.ToFloat64(m.tasksCreated); got != 4 {
		t.Errorf("flotilla_orchestrator_tasks_created_total = %v, want 4", got)
	}
	if got := testutil.ToFloat64(m.placements); got != 4 {
		t.Errorf("flotilla_scheduler_placements_total = %v, want 4", got)
	}
	passes := testutil.ToFloat64(m.passes.WithLabelValues("ok"))
	if passes < 2 {
		t.Errorf("flotilla_orchestrator_passes_total{outcome=\"ok\"} = %v, want at least 2 (create, then place)", passes)
	}
	h.pass() // settled: a pass that writes nothing still counts
	if got := testutil.ToFloat64(m.passes.WithLabelValues("ok")); got != passes+1 {
		t.Errorf("after one more pass: %v passes, want %v", got, passes+1)
	}
	if got := testutil.ToFloat64(m.tasksCreated); got != 4 {
		t.Errorf("a settled pass created tasks: %v, want still 4", got)
	}
}
