package orchestrator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla-org/flotilla/manager/state"
)

// Metrics counts the orchestrator's passes and what they wrote, and the
// scheduler's placements (the orchestrator runs it). A nil *Metrics
// counts nothing.
type Metrics struct {
	passes       *prometheus.CounterVec
	passDuration prometheus.Histogram
	tasksCreated prometheus.Counter
	placements   prometheus.Counter
}

// NewMetrics makes the orchestrator's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_orchestrator_passes_total",
			Help: "Reconcile passes run by the leader's orchestrator, by outcome (ok or error).",
		}, []string{"outcome"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flotilla_orchestrator_pass_duration_seconds",
			Help:    "Time of one reconcile pass, writes included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		tasksCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_orchestrator_tasks_created_total",
			Help: "Tasks created by the orchestrator (new replicas, replacements, global tasks, updates).",
		}),
		placements: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_scheduler_placements_total",
			Help: "Tasks the scheduler assigned to a node.",
		}),
	}
	reg.MustRegister(m.passes, m.passDuration, m.tasksCreated, m.placements)
	return m
}

// SetMetrics makes the orchestrator count in m (before Run).
func (o *Orchestrator) SetMetrics(m *Metrics) { o.metrics = m }

// observePass records one pass that began at start and ended with *err
// (deferred at the start of the pass).
func (m *Metrics) observePass(start time.Time, err *error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if *err != nil {
		outcome = "error"
	}
	m.passes.WithLabelValues(outcome).Inc()
	m.passDuration.Observe(time.Since(start).Seconds())
}

// wrote counts the task creations and placements among ops, once they
// are written. placedAtCreate are the tasks created already placed
// (placeMade): their creates carry the placement, not a patch.
func (m *Metrics) wrote(ops []state.Op, placedAtCreate int) {
	if m == nil {
		return
	}
	for _, op := range ops {
		switch {
		case op.Table != state.TableTasks:
		case op.Action == state.ActionCreate:
			m.tasksCreated.Inc()
		case op.Action == state.ActionPatch && op.Patch == state.PatchTaskAssign:
			m.placements.Inc()
		}
	}
	m.placements.Add(float64(placedAtCreate))
}
