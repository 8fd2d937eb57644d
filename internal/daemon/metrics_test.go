package daemon

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// /metrics is served from the node's registry; every other path (and
// other methods on /metrics) goes to the Engine API.
func TestMetricsPathOnTheAPI(t *testing.T) {
	d := &Daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	m := newDaemonMetrics(d)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "api", http.StatusTeapot) })
	h := m.withMetrics(api)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetricsPath, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{"go_goroutines ", "process_open_fds ", "# TYPE flotilla_raft_apply_seconds histogram", "# TYPE flotilla_dispatcher_heartbeats_total counter"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %q", want)
		}
	}
	// ?gc=1 collects first; the figures are the same series.
	gcs := func() uint32 { var ms runtime.MemStats; runtime.ReadMemStats(&ms); return ms.NumGC }
	before := gcs()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetricsPath+"?gc=1", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "go_memstats_heap_inuse_bytes ") {
		t.Fatalf("GET /metrics?gc=1: %d %s", rec.Code, rec.Body)
	}
	if gcs() == before {
		t.Error("GET /metrics?gc=1 ran no garbage collection")
	}
	// The API answers uncompressed even to a client that takes gzip;
	// --metrics-addr's handler compresses.
	gz := httptest.NewRequest(http.MethodGet, MetricsPath, nil)
	gz.Header.Set("Accept-Encoding", "gzip")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, gz)
	if enc := rec.Header().Get("Content-Encoding"); enc != "" || !strings.Contains(rec.Body.String(), "go_goroutines ") {
		t.Errorf("GET /metrics on the API with gzip accepted: Content-Encoding %q, want plain text", enc)
	}
	rec = httptest.NewRecorder()
	m.handler.ServeHTTP(rec, gz)
	if enc := rec.Header().Get("Content-Encoding"); enc != "gzip" {
		t.Errorf("GET /metrics on --metrics-addr with gzip accepted: Content-Encoding %q, want gzip", enc)
	}
	// Outside a swarm there is no node to report on.
	if strings.Contains(body, "flotilla_node_role") {
		t.Errorf("a node in no swarm reports a role:\n%s", body)
	}

	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/info", nil),
		httptest.NewRequest(http.MethodPost, MetricsPath, nil),
		httptest.NewRequest(http.MethodGet, "/v1.47/metrics", nil),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusTeapot {
			t.Errorf("%s %s: %d, want it served by the API", req.Method, req.URL.Path, rec.Code)
		}
	}
}

// Two daemons in one process keep separate metrics.
func TestMetricsRegistryPerDaemon(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, b := newDaemonMetrics(&Daemon{log: log}), newDaemonMetrics(&Daemon{log: log})
	if a.reg == b.reg {
		t.Fatal("two daemons share a registry")
	}
}

// A --metrics-addr that cannot be listened on is an error naming it.
func TestMetricsAddrRefused(t *testing.T) {
	d := &Daemon{cfg: Config{MetricsAddr: "not-an-address"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d.metrics = newDaemonMetrics(d)
	err := d.serveMetricsAddr()
	if err == nil || !strings.Contains(err.Error(), "--metrics-addr not-an-address") {
		t.Fatalf("err = %v, want one naming --metrics-addr", err)
	}
}
