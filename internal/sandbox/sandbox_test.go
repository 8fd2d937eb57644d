package sandbox_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/internal/sandbox"
	"github.com/flotilla-org/flotilla/internal/sandbox/sandboxtest"
)

// TestMain lets this test binary serve as the fake daemons that Up starts.
func TestMain(m *testing.M) {
	sandboxtest.RunFakeDaemon()
	os.Exit(m.Run())
}

func TestUpDown(t *testing.T) {
	sandboxtest.UseFakeDaemons(t)
	dir := filepath.Join(sandboxtest.ShortTempDir(t), "lib")
	sb, err := sandbox.Up(t.Context(), sandbox.Options{
		Dir: dir, Managers: 1, Workers: 1, Binary: sandboxtest.Binary(t),
		DaemonArgs: []string{"--fake-flag=hello"}, Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sandbox.Down(dir) })
	if len(sb.Managers()) != 1 || len(sb.Workers()) != 1 {
		t.Fatalf("sandbox = %+v", sb)
	}
	w, _ := sb.Node("worker-1")
	args := sandboxtest.ReadJSON[[]string](t, filepath.Join(w.DataDir, "args.json"))
	if args[len(args)-1] != "--fake-flag=hello" {
		t.Errorf("DaemonArgs not passed: %q", args)
	}
	if err := sandbox.Down(dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range sb.Nodes {
		sandboxtest.WaitGone(t, n.Name, n.PID)
	}
	if err := sandbox.Down(dir); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

func TestUpFailureStopsEverything(t *testing.T) {
	pidDir := sandboxtest.UseFakeDaemons(t)
	dir := filepath.Join(sandboxtest.ShortTempDir(t), "fail")
	_, err := sandbox.Up(t.Context(), sandbox.Options{
		Dir: dir, Managers: 2, Workers: 2, Binary: sandboxtest.Binary(t),
		DaemonArgs: []string{"--fake-fail-on=worker-1"}, Timeout: 30 * time.Second,
	})
	if err == nil {
		_ = sandbox.Down(dir)
		t.Fatal("Up succeeded with a daemon that exits at once")
	}
	for _, want := range []string{"worker-1 exited before its API came up", "fake daemon: failing on purpose"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	// The nodes before worker-1 answered their pings, so they certainly ran
	// far enough to record their PID; worker-2 may have been stopped
	// before it got that far.
	for _, name := range []string{"manager-1", "manager-2", "worker-1", "worker-2"} {
		b, err := os.ReadFile(filepath.Join(pidDir, name+".pid"))
		if err != nil {
			if name != "worker-2" {
				t.Errorf("%s never started: %v", name, err)
			}
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 {
			t.Errorf("%s: bad pid file %q", name, b)
			continue
		}
		sandboxtest.WaitGone(t, name, pid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left behind after a failed up: %v", dir, err)
	}
}
