package raftnode

import (
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Raft figures counted as they happen; the rest (term,
// indexes, leader) are read when scraped (manager/collector.go). A nil
// *Metrics counts nothing.
type Metrics struct {
	apply    prometheus.Histogram
	commit   prometheus.Histogram
	entries  prometheus.Counter
	bytes    prometheus.Counter
	snapshot prometheus.Histogram
	clock    commitClock // commitclock.go
}

// NewMetrics makes the Raft metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		apply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flotilla_raft_apply_seconds",
			Help:    "Time from proposing a write on the leader until it is committed by a quorum and applied to the leader's state (writes that succeeded).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flotilla_raft_commit_seconds",
			Help:    "Time from handing a log entry to Raft on the leader until it is committed by a quorum (seen when the leader's state machine starts applying it), for entries that succeeded.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_raft_proposed_entries_total",
			Help: "Raft log entries this manager proposed as leader and saw applied.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flotilla_raft_proposed_bytes_total",
			Help: "Bytes of the Raft log entries this manager proposed as leader and saw applied: what it replicates to each follower and writes to its log.",
		}),
	}
	m.snapshot = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "flotilla_raft_snapshot_write_seconds",
		Help:    "Time to write a Raft snapshot to disk, from its creation to its close: one this manager took, or one it received from the leader.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	})
	reg.MustRegister(m.apply, m.commit, m.entries, m.bytes, m.snapshot)
	return m
}

func (m *Metrics) observeApply(start time.Time, entries, bytes int) {
	if m == nil {
		return
	}
	m.apply.Observe(time.Since(start).Seconds())
	m.entries.Add(float64(entries))
	m.bytes.Add(float64(bytes))
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

// timeSnapshots wraps a snapshot store so that each snapshot written
// through it is timed (s itself when m is nil).
func (m *Metrics) timeSnapshots(s raft.SnapshotStore) raft.SnapshotStore {
	if m == nil {
		return s
	}
	return timedSnapshots{SnapshotStore: s, m: m}
}

type timedSnapshots struct {
	raft.SnapshotStore
	m *Metrics
}

func (s timedSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &timedSink{SnapshotSink: sink, start: time.Now(), m: s.m}, nil
}

// timedSink observes the time from Create to the first successful Close
// (the FSM closes the sink when it has written it, and Raft again).
type timedSink struct {
	raft.SnapshotSink
	start  time.Time
	m      *Metrics
	closed bool
}

func (s *timedSink) Close() error {
	err := s.SnapshotSink.Close()
	if err == nil && !s.closed {
		s.closed = true
		s.m.snapshot.Observe(time.Since(s.start).Seconds())
	}
	return err
}
