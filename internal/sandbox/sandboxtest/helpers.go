package sandboxtest

import (
	"encoding/json"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// ShortTempDir is a fresh directory with a short path (unix socket paths
// are limited to about 100 bytes; t.TempDir embeds the test name).
func ShortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fltest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Binary is this test binary: the daemon for sandbox.Up to start.
func Binary(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// WaitGone waits until pid no longer exists (its zombie reaped), or fails.
func WaitGone(t *testing.T, name string, pid int) {
	t.Helper()
	if pid <= 0 {
		t.Fatalf("%s: bad pid %d", name, pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) is still running", name, pid)
		}
		time.Sleep(delay) // polling interval, bounded by the deadline
	}
}

// ReadJSON decodes the JSON file at path, e.g. what a fake daemon recorded.
func ReadJSON[T any](t *testing.T, path string) T {
	t.Helper()
	var v T
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}
