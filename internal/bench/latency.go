package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// waits is what a run tells of who kept whom waiting: how long each
// manager took to answer the nodes' heartbeats, and how long goroutines
// waited for a CPU in each process. A node marked Down in a wave is late
// either because its manager answered late (its beats' time) or because
// its own process could not send (the simulated nodes' scheduling
// latency): these tell the two apart.
type waits struct {
	sim  *metrics.Float64Histogram
	mgrs []map[string]float64
	errs []error // reading each manager's metrics
}

const schedLatencies = "/sched/latencies:seconds"

func readWaits(ctx context.Context, mgrs []sandbox.Node) waits {
	w := waits{sim: readSchedLatencies()}
	for _, m := range mgrs {
		v, err := scrape(ctx, m, false)
		w.mgrs = append(w.mgrs, v)
		w.errs = append(w.errs, err)
	}
	return w
}

func readSchedLatencies() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: schedLatencies}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// printWaits prints, for the time between two readings, the 99th
// percentile and the largest of each wait (bucket bounds: "≤").
func printWaits(out io.Writer, before, after waits, mgrs []sandbox.Node) {
	if before.sim != nil && after.sim != nil {
		progress(out, "  simulated nodes' process: goroutines waited for a CPU %s\n", runtimeQuantiles(before.sim, after.sim))
	}
	for i, m := range mgrs {
		if err := cmp.Or(before.errs[i], after.errs[i]); err != nil {
			progress(out, "  %s: no figures: %v\n", m.Name, err)
			continue
		}
		beats := promQuantiles(before.mgrs[i], after.mgrs[i], "flotilla_node_rpc_duration_seconds", `call="heartbeat"`)
		sched := promQuantiles(before.mgrs[i], after.mgrs[i], "go_sched_latencies_seconds", "")
		progress(out, "  %s: heartbeats answered %s; goroutines waited for a CPU %s\n", m.Name, beats, sched)
	}
}

// bucketCounts are a histogram's counts per upper bound (not cumulative).
type bucketCounts struct {
	bounds []float64
	counts []float64
}

func (b bucketCounts) String() string {
	var total float64
	for _, c := range b.counts {
		total += c
	}
	if total == 0 {
		return "(none)"
	}
	p99, worst := -1, -1
	var cum float64
	for i, c := range b.counts {
		cum += c
		if p99 < 0 && cum >= 0.99*total {
			p99 = i
		}
		if c > 0 {
			worst = i
		}
	}
	return fmt.Sprintf("p99 %s, worst %s (%.0f)", b.bound(p99), b.bound(worst), total)
}

// bound says where bucket i lies: under its upper bound, or over the
// last finite one for the +Inf bucket.
func (b bucketCounts) bound(i int) string {
	d := func(s float64) string {
		return time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String()
	}
	if !math.IsInf(b.bounds[i], 1) {
		return "≤ " + d(b.bounds[i])
	}
	if i == 0 {
		return "any"
	}
	return "> " + d(b.bounds[i-1])
}

// runtimeQuantiles is the difference of two readings of a runtime
// histogram.
func runtimeQuantiles(a, b *metrics.Float64Histogram) bucketCounts {
	var out bucketCounts
	if len(a.Counts) != len(b.Counts) {
		return out
	}
	for i := range b.Counts {
		out.bounds = append(out.bounds, b.Buckets[i+1])
		out.counts = append(out.counts, float64(b.Counts[i]-a.Counts[i]))
	}
	return out
}

// promQuantiles is the difference of a Prometheus histogram between two
// scrapes (keyed by name{labels}), for the series whose labels start
// with match.
func promQuantiles(a, b map[string]float64, name, match string) bucketCounts {
	prefix := name + "_bucket{"
	if match != "" {
		prefix += match + ","
	}
	type le struct{ bound, cum float64 }
	var cums []le
	for k, v := range b {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || !strings.HasPrefix(rest, `le="`) {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(rest, `le="`), `"}`), 64)
		if err != nil {
			continue
		}
		cums = append(cums, le{f, v - a[k]})
	}
	slices.SortFunc(cums, func(x, y le) int { return cmp.Compare(x.bound, y.bound) })
	var out bucketCounts
	prev := 0.0
	for _, c := range cums {
		out.bounds = append(out.bounds, c.bound)
		out.counts = append(out.counts, c.cum-prev)
		prev = c.cum
	}
	return out
}
