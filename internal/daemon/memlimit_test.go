package daemon

import (
	"math"
	"runtime/debug"
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
