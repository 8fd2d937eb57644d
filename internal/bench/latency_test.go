package bench

import (
	"math"
	"testing"
)

// The waits read from two scrapes of a Prometheus histogram: counts in
// the window only, p99 and worst by bucket, the +Inf bucket said as
// "over the last bound".
func TestPromQuantiles(t *testing.T) {
	before := map[string]float64{
		`x_seconds_bucket{call="heartbeat",le="0.1"}`:  90,
		`x_seconds_bucket{call="heartbeat",le="1"}`:    95,
		`x_seconds_bucket{call="heartbeat",le="+Inf"}`: 100,
		`x_seconds_bucket{call="other",le="+Inf"}`:     7,
	}
	after := map[string]float64{
		`x_seconds_bucket{call="heartbeat",le="0.1"}`:  189,
		`x_seconds_bucket{call="heartbeat",le="1"}`:    195,
		`x_seconds_bucket{call="heartbeat",le="+Inf"}`: 200,
		`x_seconds_bucket{call="other",le="+Inf"}`:     9,
	}
	q := promQuantiles(before, after, "x_seconds", `call="heartbeat"`)
	if len(q.counts) != 3 || q.counts[0] != 99 || q.counts[1] != 1 || q.counts[2] != 0 || !math.IsInf(q.bounds[2], 1) {
		t.Fatalf("buckets %v %v, want 99, 1, 0 under 0.1, 1, +Inf", q.bounds, q.counts)
	}
	if got, want := q.String(), "p99 ≤ 100ms, worst ≤ 1s (100)"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	after[`x_seconds_bucket{call="heartbeat",le="+Inf"}`] = 201
	if got, want := promQuantiles(before, after, "x_seconds", `call="heartbeat"`).String(), "p99 ≤ 1s, worst > 1s (101)"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if got := promQuantiles(before, before, "x_seconds", `call="heartbeat"`).String(); got != "(none)" {
		t.Errorf("no change: %q, want (none)", got)
	}
}
