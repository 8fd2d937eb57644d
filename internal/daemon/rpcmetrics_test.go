package daemon

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// Node RPCs are timed by call; paths a client makes up all count as
// "other", so they cannot grow the series.
func TestRPCDurationByCall(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := newRPCDuration(reg)
	h := timeRPC(d, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, p := range []string{nodeapi.PathHeartbeat, nodeapi.PathHeartbeat, nodeapi.PathTaskStatus, nodeapi.PathAPI + "/v1.47/services", "/rpc/made-up-1", "/rpc/made-up-2"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, p, nil))
		if rec.Code != http.StatusNoContent {
			t.Fatalf("POST %s: %d, want the handler's answer", p, rec.Code)
		}
	}
	want := map[string]int{"heartbeat": 2, "task_status": 1, "api": 1, "other": 2}
	if n := testutil.CollectAndCount(d); n != len(want) {
		t.Errorf("%d series, want %d (%v)", n, len(want), want)
	}
	for call, n := range want {
		var m dto.Metric
		if err := d.WithLabelValues(call).(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetHistogram().GetSampleCount(); got != uint64(n) {
			t.Errorf("call=%s counted %d, want %d", call, got, n)
		}
	}
}
