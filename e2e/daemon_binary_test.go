package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDaemonRunsAsFlotillad shows `flotilla daemon` handing itself over
// to flotillad beside it (same process, so whatever started it still
// holds it), process tasks' shims running flotillad too, and a flotilla
// alone running the daemon itself, saying why.
func TestDaemonRunsAsFlotillad(t *testing.T) {
	requireE2E(t)
	c := newClusterArgs(t, 1, 0, "--no-docker")
	m1 := c.managers[0]
	exe := func(pid int) string {
		p, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		if err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		return p
	}
	m1.mu.Lock()
	pid := m1.cmd.Process.Pid
	m1.mu.Unlock()
	if got, want := exe(pid), filepath.Join(filepath.Dir(flotillaBin), "flotillad"); got != want {
		t.Fatalf("the daemon started as `flotilla daemon` (pid %d) runs %s, want %s", pid, got, want)
	}

	m1.mustCLI(t, "service", "create", "--name", "sleeper", "--replicas", "1", "--driver", "process", "--detach", "/bin/sleep", "1000")
	m1.waitRunning(t, "sleeper", 1, convergeTimeout, nil)
	procs := serviceProcs("sleeper", m1)
	if len(procs) != 1 {
		t.Fatalf("%d programs of sleeper found, want 1", len(procs))
	}
	if got := exe(procs[0].shimPID); filepath.Base(got) != "flotillad" {
		t.Errorf("the task's shim runs %s, want flotillad", got)
	}

	// flotilla alone: the daemon runs in its process, and says so.
	alone := filepath.Join(t.TempDir(), "flotilla")
	b, err := os.ReadFile(flotillaBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, alone, "daemon", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "flotillad not found next to") || !strings.Contains(string(out), "--data-dir") {
		t.Fatalf("flotilla daemon --help without flotillad: %v\n%s", err, out)
	}
}
