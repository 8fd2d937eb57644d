package daemon

import (
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// rpcCalls names the node RPCs by path, for the call label: a fixed set,
// so a client cannot grow the series with paths of its own.
var rpcCalls = map[string]string{
	nodeapi.PathCA:          "ca",
	nodeapi.PathJoin:        "join",
	nodeapi.PathHeartbeat:   "heartbeat",
	nodeapi.PathRenew:       "renew",
	nodeapi.PathRaftJoin:    "raft_join",
	nodeapi.PathRaftLeave:   "raft_leave",
	nodeapi.PathAssignments: "assignments",
	nodeapi.PathTaskStatus:  "task_status",
	nodeapi.PathLogs:        "logs",
	nodeapi.PathRoutes:      "routes",
	nodeapi.PathPeers:       "peers",
	nodeapi.PathRelay:       "relay",
}

func rpcCall(path string) string {
	if c, ok := rpcCalls[path]; ok {
		return c
	}
	if strings.HasPrefix(path, nodeapi.PathAPI+"/") {
		return "api"
	}
	return "other"
}

// newRPCDuration is the time this node takes to answer the node RPCs it
// serves. A heartbeat's is what tells an overloaded manager: a node
// whose beats take longer than its grace (three periods) is marked Down
// though it is alive. On a follower a beat's time includes its relay to
// the leader.
func newRPCDuration(reg prometheus.Registerer) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flotilla_node_rpc_duration_seconds",
		Help:    "Time to answer a node RPC (heartbeat, task_status, relay, assignments, ...), by call; the long-polls (assignments, routes, peers) wait up to 20 s for a change.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25},
	}, []string{"call"})
	reg.MustRegister(h)
	return h
}

// timeRPC observes each node RPC's time to answer in d: from the moment
// its whole request is in, so a caller slow to send its body (headers
// and body come in separate frames) does not count as a slow manager.
func timeRPC(d *prometheus.HistogramVec, next http.Handler) http.Handler {
	return timeRPCWith(d, time.Now, next)
}

func timeRPCWith(d *prometheus.HistogramVec, now func() time.Time, next http.Handler) http.Handler {
	if d == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		var body *bodyClock
		if r.Body != nil && r.Body != http.NoBody {
			left := r.ContentLength
			if left < 0 {
				left = math.MaxInt64 // unknown: in at its end
			}
			body = &bodyClock{ReadCloser: r.Body, left: left, now: now}
			r.Body = body
		}
		next.ServeHTTP(w, r)
		if body != nil {
			if in := body.in.Load(); in != nil && in.After(start) {
				start = *in
			}
		}
		d.WithLabelValues(rpcCall(r.URL.Path)).Observe(now().Sub(start).Seconds())
	})
}

// bodyClock notes when a request's body has been read whole. A request
// passed on to the leader is read by the proxy's transport, which may
// still be at it when the handler returns: in is read atomically.
type bodyClock struct {
	io.ReadCloser
	left int64 // bytes still to come (one reader at a time)
	now  func() time.Time
	in   atomic.Pointer[time.Time]
}

func (b *bodyClock) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if (err != nil || b.left <= 0) && b.in.Load() == nil {
		t := b.now()
		b.in.Store(&t)
	}
	return n, err
}
