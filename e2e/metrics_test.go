package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape is one node's /metrics, parsed.
type scrape map[string]*dto.MetricFamily

func parseScrape(body []byte) (scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %v", err)
	}
	return fams, nil
}

// sum adds the values of metric name's series whose labels include
// every pair of labels (name=value, ...); a histogram gives its count.
// ok is false when the metric is absent.
func (s scrape) sum(name string, labels ...string) (total float64, ok bool) {
	fam := s[name]
	if fam == nil {
		return 0, false
	}
series:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue series
			}
		}
		switch {
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total, true
}

// want checks that metric name (with labels) adds up to v.
func (s scrape) want(name string, v float64, labels ...string) error {
	got, ok := s.sum(name, labels...)
	if !ok {
		return fmt.Errorf("%s is not in the scrape", name)
	}
	if got != v {
		return fmt.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
	return nil
}

// metrics scrapes the node's API socket.
func (n *node) metrics() (scrape, error) {
	code, body, err := n.apiRequest(http.MethodGet, "/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("%s: GET /metrics: %v", n, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s: GET /metrics: status %d: %s", n, code, body)
	}
	return parseScrape(body)
}

// httpMetrics scrapes a --metrics-addr listener.
func httpMetrics(addr string) (scrape, error) {
	c := http.Client{Timeout: cliTimeout}
	res, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET http://%s/metrics: %s: %s", addr, res.Status, body)
	}
	if ct := res.Header.Get("Content-Type"); !bytes.HasPrefix([]byte(ct), []byte("text/plain")) {
		return nil, fmt.Errorf("GET http://%s/metrics: Content-Type %q, want the text format", addr, ct)
	}
	return parseScrape(body)
}

// TestMetrics scrapes a 3-manager + 1-worker cluster the way Prometheus
// would: Raft and node figures on the managers' API sockets, a service's
// tasks counted as they start, the API's request counter, the worker's
// own tasks on its --metrics-addr listener, and a killed worker counted
// Down.
func TestMetrics(t *testing.T) {
	c := newClusterArgs(t, 3, 1, "--no-docker")
	m1, w1 := c.managers[0], c.workers[0]

	// The worker serves its metrics on a TCP listener as well.
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	w1.Stop()
	w1.args = append(w1.args, "--metrics-addr", metricsAddr)
	w1.Start()
	c.waitReady(m1, convergeTimeout)

	// Every manager knows the term and the one leader; the cluster has
	// four ready nodes.
	var leader *node
	eventually(t, 10*time.Second, func() error {
		leaders := 0.0
		for _, m := range c.managers {
			s, err := m.metrics()
			if err != nil {
				return err
			}
			if term, ok := s.sum("flotilla_raft_term"); !ok || term < 1 {
				return fmt.Errorf("%s: flotilla_raft_term = %v (present %v), want >= 1", m, term, ok)
			}
			if err := s.want("flotilla_raft_has_leader", 1); err != nil {
				return fmt.Errorf("%s: %v", m, err)
			}
			if err := s.want("flotilla_raft_voters", 3); err != nil {
				return fmt.Errorf("%s: %v", m, err)
			}
			if err := s.want("flotilla_nodes", 4, "state", "ready"); err != nil {
				return fmt.Errorf("%s: %v", m, err)
			}
			if err := s.want("flotilla_node_role", 1, "role", "manager"); err != nil {
				return fmt.Errorf("%s: %v", m, err)
			}
			if l, _ := s.sum("flotilla_raft_leader"); l == 1 {
				leader = m
				leaders++
			}
		}
		if leaders != 1 {
			return fmt.Errorf("flotilla_raft_leader adds up to %v over the managers, want 1", leaders)
		}
		return nil
	})

	before, err := m1.metrics()
	if err != nil {
		t.Fatal(err)
	}
	createsBefore, _ := before.sum("flotilla_api_requests_total", "method", "POST", "route", "/services/create", "code", "201")

	// Managers drained: the service's three tasks all run on the worker.
	for _, m := range c.managers {
		m1.mustCLI(t, "node", "update", "--availability", "drain", m.name)
	}
	m1.mustCLI(t, "service", "create", "--name", "web", "--replicas", "3", "--driver", "process", "--detach", "/bin/sleep", "1000")

	eventually(t, 20*time.Second, func() error {
		s, err := m1.metrics()
		if err != nil {
			return err
		}
		if err := s.want("flotilla_tasks", 3, "state", "running"); err != nil {
			return err
		}
		if err := s.want("flotilla_service_tasks_running", 3, "service", "web"); err != nil {
			return err
		}
		if err := s.want("flotilla_service_tasks_desired", 3, "service", "web"); err != nil {
			return err
		}
		if err := s.want("flotilla_store_objects", 1, "kind", "services"); err != nil {
			return err
		}
		if creates, _ := s.sum("flotilla_api_requests_total", "method", "POST", "route", "/services/create", "code", "201"); creates != createsBefore+1 {
			return fmt.Errorf("flotilla_api_requests_total for POST /services/create 201 = %v, want %v", creates, createsBefore+1)
		}
		if n, _ := s.sum("flotilla_api_request_duration_seconds", "method", "POST", "route", "/services/create"); n < 1 {
			return fmt.Errorf("no POST /services/create in flotilla_api_request_duration_seconds")
		}
		return nil
	})

	// The leader counted the tasks it made and placed, the nodes'
	// heartbeats and sessions, and timed its Raft writes.
	eventually(t, 10*time.Second, func() error {
		s, err := leader.metrics()
		if err != nil {
			return err
		}
		for _, name := range []string{"flotilla_orchestrator_tasks_created_total", "flotilla_scheduler_placements_total"} {
			if n, _ := s.sum(name); n < 3 {
				return fmt.Errorf("leader %s: %s = %v, want >= 3", leader, name, n)
			}
		}
		for _, name := range []string{"flotilla_dispatcher_heartbeats_total", "flotilla_raft_apply_seconds", "flotilla_raft_commit_seconds", "flotilla_orchestrator_passes_total", "flotilla_dispatcher_task_status_reports_total"} {
			if n, _ := s.sum(name); n < 1 {
				return fmt.Errorf("leader %s: %s = %v, want > 0", leader, name, n)
			}
		}
		return s.want("flotilla_dispatcher_sessions", 4)
	})
	// Each node's session is served by one manager, which hands the node
	// its tasks: together they timed every task's assignment, and the
	// beats and status reports they answered.
	eventually(t, 10*time.Second, func() error {
		var sessions, handed, beats, reports float64
		for _, m := range c.managers {
			s, err := m.metrics()
			if err != nil {
				return err
			}
			n, _ := s.sum("flotilla_dispatcher_served_sessions")
			sessions += n
			n, _ = s.sum("flotilla_dispatcher_assignment_latency_seconds")
			handed += n
			n, _ = s.sum("flotilla_node_rpc_duration_seconds", "call", "heartbeat")
			beats += n
			n, _ = s.sum("flotilla_node_rpc_duration_seconds", "call", "task_status")
			reports += n
			if _, ok := s.sum("go_sched_latencies_seconds"); !ok {
				return fmt.Errorf("%s: no go_sched_latencies_seconds", m)
			}
		}
		if sessions != 4 || handed < 3 {
			return fmt.Errorf("the managers serve %v sessions and timed %v assignments, want 4 and >= 3", sessions, handed)
		}
		if beats < 4 || reports < 1 {
			return fmt.Errorf("the managers timed %v heartbeats and %v status reports, want >= 4 and >= 1", beats, reports)
		}
		return nil
	})

	// The worker's agent counts its own tasks and its driver's starts.
	eventually(t, 10*time.Second, func() error {
		s, err := httpMetrics(metricsAddr)
		if err != nil {
			return err
		}
		if err := s.want("flotilla_agent_tasks", 3, "state", "running", "driver", "process"); err != nil {
			return err
		}
		if n, _ := s.sum("flotilla_agent_driver_call_duration_seconds", "driver", "process", "call", "start", "outcome", "ok"); n < 3 {
			return fmt.Errorf("flotilla_agent_driver_call_duration_seconds counts %v process starts, want >= 3", n)
		}
		if err := s.want("flotilla_node_role", 1, "role", "worker"); err != nil {
			return err
		}
		if _, ok := s.sum("flotilla_raft_term"); ok {
			return fmt.Errorf("a worker reports flotilla_raft_term")
		}
		if _, ok := s.sum("go_goroutines"); !ok {
			return fmt.Errorf("no Go runtime metrics (go_goroutines)")
		}
		return nil
	})
	// The listener serves metrics only, not the API.
	res, err := http.Get("http://" + metricsAddr + "/services")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /services on --metrics-addr: %s, want 404 (metrics only)", res.Status)
	}

	// A killed worker is counted Down within the detection time.
	w1.Kill9()
	eventually(t, downTimeout, func() error {
		s, err := m1.metrics()
		if err != nil {
			return err
		}
		if err := s.want("flotilla_nodes", 1, "state", "down"); err != nil {
			return err
		}
		if err := s.want("flotilla_nodes", 3, "state", "ready"); err != nil {
			return err
		}
		return s.want("flotilla_service_tasks_running", 0, "service", "web")
	})
	// Its tasks' replacements have nowhere to go: the managers are drained.
	eventually(t, 20*time.Second, func() error {
		s, err := m1.metrics()
		if err != nil {
			return err
		}
		return s.want("flotilla_scheduler_unplaceable_tasks", 3, "reason", "nodes_unavailable")
	})
	s, err := leader.metrics()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.want("flotilla_dispatcher_sessions", 3); err != nil {
		t.Errorf("after the worker's death: %v", err)
	}
}
