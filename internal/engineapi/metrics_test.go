package engineapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Requests are counted by route pattern, whatever the object ID or API
// version in the path, and by the status code the client got.
func TestMetricsCountRequestsByRoute(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHandlerWithMetrics(newFakeCluster(), NewMetrics(reg), nil)
	wantStatus(t, serve(t, h, http.MethodGet, "/nodes/"+idA, ""), http.StatusOK)
	wantStatus(t, serve(t, h, http.MethodGet, "/v1.47/nodes/"+idA, ""), http.StatusOK)
	wantStatus(t, serve(t, h, http.MethodGet, "/nodes/nosuchnode", ""), http.StatusNotFound)
	wantStatus(t, serve(t, h, http.MethodGet, "/nosuch/path", ""), http.StatusNotFound)
	wantStatus(t, serve(t, h, "BREW", "/nodes", ""), http.StatusMethodNotAllowed)

	want := `
# HELP flotilla_api_requests_total Engine API requests served by this node, by method, route pattern and status code.
# TYPE flotilla_api_requests_total counter
flotilla_api_requests_total{code="200",method="GET",route="/nodes/{id}"} 2
flotilla_api_requests_total{code="404",method="GET",route="/nodes/{id}"} 1
flotilla_api_requests_total{code="404",method="GET",route="unmatched"} 1
flotilla_api_requests_total{code="405",method="other",route="unmatched"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "flotilla_api_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "flotilla_api_request_duration_seconds"); n != 3 {
		t.Errorf("flotilla_api_request_duration_seconds has %d series, want 3 (GET /nodes/{id}, GET and other unmatched)", n)
	}
}

// Without metrics the handler serves as ever.
func TestNoMetrics(t *testing.T) {
	wantStatus(t, serve(t, NewHandler(newFakeCluster()), http.MethodGet, "/nodes/"+idA, ""), http.StatusOK)
}
