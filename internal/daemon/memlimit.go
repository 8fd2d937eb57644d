package daemon

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

// DefaultMemoryLimit is --memory-limit's default: the soft limit on the
// daemon's Go memory (heap, stacks, runtime) when GOMEMLIMIT is not set.
//
// Go's collector lets the heap grow to twice what survived the last
// collection (GOGC=100) and returns freed pages to the system slowly, so
// a manager's resident memory stays near twice its live data after a
// burst (10,000 tasks placed at once). Under the soft limit the collector
// runs sooner, and returns freed memory, as the process nears it. It is
// soft: a manager whose live data needs more than the limit keeps going,
// its collector's share of the CPU capped at about half; raise the limit
// for clusters of many tens of thousands of tasks.
const DefaultMemoryLimit = "0"

// applyMemoryLimit sets the soft memory limit from --memory-limit (a size
// such as 256MiB; 0 for none). An explicit flag wins over GOMEMLIMIT; the
// default leaves a GOMEMLIMIT from the environment in place.
func applyMemoryLimit(v string, explicit bool) (int64, error) {
	if !explicit && os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), nil
	}
	v = strings.TrimSpace(v)
	if v == "0" || strings.EqualFold(v, "none") {
		debug.SetMemoryLimit(math.MaxInt64)
		return 0, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--memory-limit %q: give a size such as 256MiB, or 0 for none", v)
	}
	debug.SetMemoryLimit(n)
	return n, nil
}

// DefaultGCPercent is --gc-percent's default: 0, set by the daemon from
// its live heap (autoGCPercent), unless GOGC is set.
const DefaultGCPercent = 0

// applyGCPercent sets the collector's growth target from --gc-percent and
// tells whether the daemon is to set it itself (0). An explicit flag wins
// over GOGC; the default leaves a GOGC from the environment in place.
func applyGCPercent(p int, explicit bool) (auto bool, err error) {
	if p != 0 && (p < 10 || p > 1000) {
		return false, fmt.Errorf("--gc-percent %d: use a percentage between 10 and 1000, or 0 to let the daemon choose", p)
	}
	if !explicit && os.Getenv("GOGC") != "" {
		return false, nil
	}
	if p == 0 {
		debug.SetGCPercent(gcSmall)
		return true, nil
	}
	debug.SetGCPercent(p)
	return false, nil
}

// The collector's growth target when the daemon chooses it. Go's default
// (100) lets the heap grow to twice what the last collection kept: a
// manager of 10,000 tasks keeping 55 MiB sat at 120 - 140 MiB resident.
// While the live heap is small a collection is cheap, so the daemon
// collects at half of it (50) and holds a third less; past gcBigHeap,
// where each collection costs more CPU than the memory saved is worth, it
// goes back to Go's default (back below gcSmallHeap: a gap, so that a
// heap near the line does not flip at every check).
const (
	gcSmall, gcBig         = 50, 100
	gcSmallHeap, gcBigHeap = 64 << 20, 128 << 20
	gcTuneEvery            = 5 * time.Second
)

// autoGCPercent is the growth target for a live heap of live bytes, the
// current one being cur.
func autoGCPercent(cur int, live uint64) int {
	switch {
	case live > gcBigHeap:
		return gcBig
	case live < gcSmallHeap:
		return gcSmall
	}
	return cur
}

// tuneGC follows the live heap and sets the growth target, until ctx ends.
func tuneGC(ctx context.Context) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	cur := gcSmall
	t := time.NewTicker(gcTuneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		if want := autoGCPercent(cur, sample[0].Value.Uint64()); want != cur {
			debug.SetGCPercent(want)
			cur = want
		}
	}
}
