package daemon

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strings"

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
