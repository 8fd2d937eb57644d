package manager

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla-org/flotilla/manager/dispatcher"
	"github.com/flotilla-org/flotilla/manager/orchestrator"
	"github.com/flotilla-org/flotilla/manager/raftnode"
)

// Metrics are the counters and histograms of a manager's parts. They
// belong to the daemon, not to one Manager, so they keep counting across
// a demotion and promotion. A nil *Metrics counts nothing.
type Metrics struct {
	Raft         *raftnode.Metrics
	Dispatcher   *dispatcher.Metrics
	Orchestrator *orchestrator.Metrics // with the scheduler's placements
}

// NewMetrics makes a manager's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		Raft:         raftnode.NewMetrics(reg),
		Dispatcher:   dispatcher.NewMetrics(reg),
		Orchestrator: orchestrator.NewMetrics(reg),
	}
}

func (m *Metrics) raft() *raftnode.Metrics {
	if m == nil {
		return nil
	}
	return m.Raft
}

// attach makes the manager's parts count in m.
func (m *Metrics) attach(mgr *Manager) {
	if m == nil {
		return
	}
	mgr.disp.SetMetrics(m.Dispatcher)
	mgr.orch.SetMetrics(m.Orchestrator)
}
