package dispatcher

import (
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// Metrics counts what the dispatcher hears from nodes and how soon it
// hands them their tasks. A nil *Metrics counts nothing.
type Metrics struct {
	heartbeats    prometheus.Counter
	statusReports prometheus.Counter
	assignLatency prometheus.Histogram
}

// NewMetrics makes the dispatcher's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_dispatcher_heartbeats_total",
			Help: "Node heartbeats received by this manager's dispatcher.",
		}),
		statusReports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_dispatcher_task_status_reports_total",
			Help: "Task status reports received from nodes (one per task state change a node reports).",
		}),
		assignLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flotilla_dispatcher_assignment_latency_seconds",
			Help:    "Time from a task's placement on a node until the dispatcher hands it to that node.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
	}
	reg.MustRegister(m.heartbeats, m.statusReports, m.assignLatency)
	return m
}

// SetMetrics makes the dispatcher count in m.
func (d *Dispatcher) SetMetrics(m *Metrics) {
	d.mu.Lock()
	d.metrics = m
	d.mu.Unlock()
}

func (d *Dispatcher) counters() *Metrics {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.metrics
}

func (m *Metrics) heartbeat() {
	if m != nil {
		m.heartbeats.Inc()
	}
}

func (m *Metrics) statuses(n int) {
	if m != nil {
		m.statusReports.Add(float64(n))
	}
}

// handedOut records the latency of the tasks in a node's new assignment
// set that are still Assigned: placed, not yet acknowledged by the node.
// (A node that polls again before its acknowledgement is written counts
// such a task again.)
func (m *Metrics) handedOut(resp nodeapi.AssignmentsResponse, now time.Time) {
	if m == nil {
		return
	}
	for _, a := range resp.Tasks {
		if a.Task.Status.State != swarm.TaskStateAssigned || a.Task.Status.Timestamp.IsZero() {
			continue
		}
		m.assignLatency.Observe(max(now.Sub(a.Task.Status.Timestamp), 0).Seconds())
	}
}

// Serve records that a node's heartbeat came to this manager itself (not
// relayed): on any manager, the node's session is served here.
func (d *Dispatcher) Serve(nodeID string) {
	d.mu.Lock()
	d.served[nodeID] = time.Now().Add(time.Duration(MissedBeats) * d.Period())
	d.mu.Unlock()
}

// ServedSessions counts the nodes whose session this manager served within
// the last MissedBeats heartbeat periods, forgetting older ones.
func (d *Dispatcher) ServedSessions() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	for id, until := range d.served {
		if until.Before(now) {
			delete(d.served, id)
		}
	}
	return len(d.served)
}

// Sessions counts the nodes this dispatcher heard from within the last
// MissedBeats heartbeat periods: on the leader, the nodes connected.
func (d *Dispatcher) Sessions() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	now, n := time.Now(), 0
	for _, deadline := range d.lastSeen {
		if deadline.After(now) {
			n++
		}
	}
	return n
}
