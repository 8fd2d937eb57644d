package engineapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts the API's requests by route pattern (such as
// "/services/{id}", never the raw path: one series per route, not per
// object) and status code. A nil *Metrics counts nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics makes the API's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flotilla_api_requests_total",
			Help: "Engine API requests served by this node, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flotilla_api_request_duration_seconds",
			Help:    "Time to answer an Engine API request (to its end, for streams), by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// routeUnmatched labels requests that matched no route.
const routeUnmatched = "unmatched"

func (m *Metrics) observe(method, route string, code int, start time.Time) {
	if m == nil {
		return
	}
	if code == 0 {
		code = http.StatusOK // a handler that wrote nothing answered 200
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		method = "other" // any string a client sends would be a new series
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
}
