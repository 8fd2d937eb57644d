package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the agent's driver calls. A nil *Metrics counts nothing.
type Metrics struct {
	driverCalls *prometheus.HistogramVec
}

// NewMetrics makes the agent's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		driverCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flotilla_agent_driver_call_duration_seconds",
			Help:    "Time of the agent's calls to its task drivers, by driver, call (start, stop, remove) and outcome (ok or error).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"driver", "call", "outcome"}),
	}
	reg.MustRegister(m.driverCalls)
	return m
}

// observeCall records one driver call that began at start.
func (m *Metrics) observeCall(driverName, call string, start time.Time, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.driverCalls.WithLabelValues(driverName, call, outcome).Observe(time.Since(start).Seconds())
}

var descAgentTasks = prometheus.NewDesc("flotilla_agent_tasks", "Tasks this node's agent holds, by state and driver.", []string{"state", "driver"}, nil)

// CollectTaskCounts sends the executor's tasks by state and driver.
func CollectTaskCounts(ch chan<- prometheus.Metric, e *Executor) {
	for _, c := range e.TaskCounts() {
		ch <- prometheus.MustNewConstMetric(descAgentTasks, prometheus.GaugeValue, float64(c.N), string(c.State), c.Driver)
	}
}
