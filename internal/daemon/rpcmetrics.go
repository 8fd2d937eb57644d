package daemon

import (
	"net/http"
	"strings"
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

// timeRPC observes each node RPC's time to answer in d.
func timeRPC(d *prometheus.HistogramVec, next http.Handler) http.Handler {
	if d == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		d.WithLabelValues(rpcCall(r.URL.Path)).Observe(time.Since(start).Seconds())
	})
}
