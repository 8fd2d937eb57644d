package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flotilla-org/flotilla/agent"
	"github.com/flotilla-org/flotilla/internal/engineapi"
	"github.com/flotilla-org/flotilla/manager"
)

// MetricsPath is where a node serves its Prometheus metrics, on the API
// socket and on --metrics-addr.
const MetricsPath = "/metrics"

// daemonMetrics is one node's Prometheus registry (its own, not the
// process-wide default: tests run several daemons in one process) and
// the counters it hands to its parts.
type daemonMetrics struct {
	reg     *prometheus.Registry
	api     *engineapi.Metrics
	manager *manager.Metrics
	agent   *agent.Metrics
	rpc     *prometheus.HistogramVec // node RPCs served, by call
	handler http.Handler
	// local serves the API's listeners, without gzip: a reader on the
	// socket gains nothing from it, and each gzip writer (kept in a pool
	// between scrapes) holds about 0.8 MB of compressor tables.
	// --metrics-addr, what Prometheus scrapes over the network, keeps it.
	local http.Handler
}

func newDaemonMetrics(d *Daemon) *daemonMetrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		// The scheduler's latencies (go_sched_latencies_seconds): how long
		// goroutines wait for a CPU, i.e. whether the node is starved.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		nodeCollector{d},
	)
	return &daemonMetrics{
		reg:     reg,
		api:     engineapi.NewMetrics(reg),
		manager: manager.NewMetrics(reg),
		agent:   agent.NewMetrics(reg),
		rpc:     newRPCDuration(reg),
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{d}}),
		local:   promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{d}, DisableCompression: true}),
	}
}

// withMetrics serves MetricsPath from the registry and the rest from api.
// On the API socket (not on --metrics-addr, which anyone who reaches it
// may read) ?gc=1 runs a garbage collection first and gives the freed
// pages back to the system (debug.FreeOSMemory): go_memstats_heap_inuse_bytes
// and process_resident_memory_bytes then show what the node keeps, not
// what its collector has yet to free or the pages it freed but still holds
// (bench converge reads them so). A collection alone returns no page: the
// resident size after it was the one before.
func (m *daemonMetrics) withMetrics(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == MetricsPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			if r.URL.Query().Get("gc") == "1" {
				debug.FreeOSMemory()
			}
			m.local.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// serveMetricsAddr opens --metrics-addr: plain HTTP serving only the
// metrics (no control of the node).
func (d *Daemon) serveMetricsAddr() error {
	addr := d.cfg.MetricsAddr
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, d.metrics.handler)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	d.servers = append(d.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics listener stopped", "addr", addr, "err", err)
		}
	}()
	d.log.Info("metrics listening", "addr", ln.Addr().String())
	return nil
}

// slogPrinter sends promhttp's errors (a collector that failed) to the
// daemon's log.
type slogPrinter struct{ d *Daemon }

func (p slogPrinter) Println(v ...any) { p.d.log.Warn("metrics: " + fmt.Sprint(v...)) }

var descNodeRole = prometheus.NewDesc("flotilla_node_role", "1 for the role this node has in its swarm (manager or worker); no series outside a swarm.", []string{"role"}, nil)

// nodeCollector reads the current cluster node's figures when scraped:
// its manager's Raft and state (on managers) and its agent's tasks. The
// node changes with swarm init, join, leave and role changes, so it is
// looked up on every scrape. It describes nothing: the metrics it sends
// depend on the node's role.
type nodeCollector struct{ d *Daemon }

func (nodeCollector) Describe(chan<- *prometheus.Desc) {}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.d.current()
	if n == nil {
		return
	}
	role := swarm.NodeRoleWorker
	if m := n.manager(); m != nil {
		role = swarm.NodeRoleManager
		m.CollectMetrics(ch)
	}
	ch <- prometheus.MustNewConstMetric(descNodeRole, prometheus.GaugeValue, 1, string(role))
	if n.exec != nil {
		agent.CollectTaskCounts(ch, n.exec)
	}
}
