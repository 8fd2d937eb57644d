package daemon

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

// --memory-limit sets the runtime's soft limit; 0 removes it; a bad
// size is refused with a message naming the flag.
func TestMemoryLimitFlag(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	t.Setenv("GOMEMLIMIT", "")

	if n, err := applyMemoryLimit("256MiB", true); err != nil || n != 256<<20 || debug.SetMemoryLimit(-1) != 256<<20 {
		t.Fatalf("256MiB: %d, %v; runtime limit %d", n, err, debug.SetMemoryLimit(-1))
	}
	if n, err := applyMemoryLimit("0", false); err != nil || n != 0 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatalf("0: %d, %v; runtime limit %d", n, err, debug.SetMemoryLimit(-1))
	}
	if _, err := applyMemoryLimit("lots", true); err == nil {
		t.Fatal("a size that is not one was accepted")
	}
	// Without the flag, GOMEMLIMIT (read by the runtime at start) stays.
	debug.SetMemoryLimit(64 << 20)
	t.Setenv("GOMEMLIMIT", "64MiB")
	if n, err := applyMemoryLimit(DefaultMemoryLimit, false); err != nil || n != 64<<20 {
		t.Fatalf("default with GOMEMLIMIT: %d, %v", n, err)
	}
}

// --gc-percent sets the collector's target; 0 (the default) lets the
// daemon choose from its live heap; a GOGC from the environment stays
// unless the flag is given; a percentage out of range is refused.
func TestGCPercentFlag(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	t.Setenv("GOGC", "")

	if auto, err := applyGCPercent(200, true); err != nil || auto || debug.SetGCPercent(200) != 200 {
		t.Fatalf("200: auto %v, %v", auto, err)
	}
	if auto, err := applyGCPercent(0, false); err != nil || !auto || debug.SetGCPercent(gcSmall) != gcSmall {
		t.Fatalf("default: auto %v, %v", auto, err)
	}
	for _, bad := range []int{5, -1, 5000} {
		if _, err := applyGCPercent(bad, true); err == nil || !strings.Contains(err.Error(), "--gc-percent") {
			t.Errorf("%d: %v, want a refusal naming the flag", bad, err)
		}
	}
	t.Setenv("GOGC", "80")
	debug.SetGCPercent(80)
	if auto, err := applyGCPercent(0, false); err != nil || auto || debug.SetGCPercent(80) != 80 {
		t.Fatalf("default with GOGC=80: auto %v, %v; the runtime's GOGC was changed", auto, err)
	}
}

// The daemon collects at 50 while its live heap is small and at Go's
// default once it is large, with a gap between the two so that a heap
// near the line does not flip at every check.
func TestAutoGCPercent(t *testing.T) {
	for _, tc := range []struct {
		cur  int
		live uint64
		want int
	}{
		{gcSmall, 30 << 20, gcSmall},
		{gcSmall, 120 << 20, gcSmall}, // in the gap: stays
		{gcSmall, 200 << 20, gcBig},
		{gcBig, 120 << 20, gcBig}, // in the gap: stays
		{gcBig, 40 << 20, gcSmall},
	} {
		if got := autoGCPercent(tc.cur, tc.live); got != tc.want {
			t.Errorf("at %d with %d MiB live: %d, want %d", tc.cur, tc.live>>20, got, tc.want)
		}
	}
}
