package raftnode

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Raft figures counted as they happen; the rest (term,
// indexes, leader) are read when scraped (manager/collector.go). A nil
// *Metrics counts nothing.
type Metrics struct {
	apply   prometheus.Histogram
	entries prometheus.Counter
}

// NewMetrics makes the Raft metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flotilla_raft_apply_seconds",
			Help:    "Time from proposing a write on the leader until it is committed by a quorum and applied to the leader's state (writes that succeeded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_raft_proposed_entries_total",
			Help: "Raft log entries this manager proposed as leader and saw applied.",
		}),
	}
	reg.MustRegister(m.apply, m.entries)
	return m
}

func (m *Metrics) observeApply(start time.Time, entries int) {
	if m == nil {
		return
	}
	m.apply.Observe(time.Since(start).Seconds())
	m.entries.Add(float64(entries))
}

// LogEntries is how many entries this member's log holds (those not yet
// compacted into a snapshot, plus the trailing ones kept after it).
func (n *Node) LogEntries() uint64 {
	first, err1 := n.wal.FirstIndex()
	last, err2 := n.wal.LastIndex()
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return 0
	}
	return last - first + 1
}
