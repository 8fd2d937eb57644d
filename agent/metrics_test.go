package agent

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flotilla-org/flotilla/agent/driver/fake"
)

// collectorFunc turns a collect function into a prometheus.Collector.
type collectorFunc func(chan<- prometheus.Metric)

func (collectorFunc) Describe(chan<- *prometheus.Desc)      {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// The agent's metrics show its tasks by state and driver, and time the
// driver's starts (successful or not) and stops.
func TestMetricsTasksAndDriverCalls(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h, err := startExec(t, fake.New(), "", func(e *Executor) { e.Metrics = m })
	if err != nil {
		t.Fatal(err)
	}
	reg.MustRegister(collectorFunc(func(ch chan<- prometheus.Metric) { CollectTaskCounts(ch, h.e) }))

	ok1 := mkTask("t1", 1, swarm.TaskStateRunning)
	ok2 := mkTask("t2", 2, swarm.TaskStateRunning)
	bad := mkTask("t3", 3, swarm.TaskStateRunning, "FAKE_FAIL_START=no space left")
	h.e.Sync(assigned(ok1, ok2, bad))
	h.waitState("t1", swarm.TaskStateRunning)
	h.waitState("t2", swarm.TaskStateRunning)
	h.waitState("t3", swarm.TaskStateFailed)

	want := `
# HELP flotilla_agent_tasks Tasks this node's agent holds, by state and driver.
# TYPE flotilla_agent_tasks gauge
flotilla_agent_tasks{driver="fake",state="failed"} 1
flotilla_agent_tasks{driver="fake",state="running"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "flotilla_agent_tasks"); err != nil {
		t.Error(err)
	}
	calls := func(call, outcome string) uint64 {
		t.Helper()
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		for _, f := range fams {
			if f.GetName() != "flotilla_agent_driver_call_duration_seconds" {
				continue
			}
			for _, s := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range s.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["driver"] == "fake" && labels["call"] == call && labels["outcome"] == outcome {
					n += s.GetHistogram().GetSampleCount()
				}
			}
		}
		return n
	}
	if ok, failed := calls("start", "ok"), calls("start", "error"); ok != 2 || failed != 1 {
		t.Errorf("driver starts timed: %d ok, %d failed; want 2 and 1", ok, failed)
	}

	h.e.Sync(assigned(withDesired(ok1, swarm.TaskStateShutdown), ok2, bad))
	h.waitState("t1", swarm.TaskStateShutdown)
	eventually(t, "a timed stop", func() bool { return calls("stop", "ok") == 1 })
}
