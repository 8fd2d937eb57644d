package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

// slowBody is a request body whose caller takes a while to send it: the
// clock moves on while it is read.
type slowBody struct {
	data  []byte
	clock *time.Time
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, io.EOF
	}
	*b.clock = b.clock.Add(5 * time.Second)
	n := copy(p, b.data[:1])
	b.data = b.data[n:]
	return n, nil
}

// A caller slow to send its body is not counted against the manager:
// the time runs from the whole request in to the answer.
func TestRPCDurationFromRequestIn(t *testing.T) {
	for _, length := range []int64{2, -1} {
		reg := prometheus.NewRegistry()
		d := newRPCDuration(reg)
		clock := time.Unix(1000, 0)
		now := func() time.Time { return clock }
		h := timeRPCWith(d, now, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				t.Error(err)
			}
			clock = clock.Add(300 * time.Millisecond) // the manager's own work
		}))
		req := httptest.NewRequest(http.MethodPost, nodeapi.PathHeartbeat, nil)
		req.Body, req.ContentLength = io.NopCloser(&slowBody{data: []byte("{}"), clock: &clock}), length
		h.ServeHTTP(httptest.NewRecorder(), req)
		var m dto.Metric
		if err := d.WithLabelValues("heartbeat").(prometheus.Histogram).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetHistogram().GetSampleSum(); got != 0.3 {
			t.Errorf("length %d: timed %vs, want 0.3s (the 10s the body took to come not counted)", length, got)
		}
	}
}
