//go:build linux

package process_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// slowShimEnv, when set in the environment a shim inherits, makes the test
// binary's shim hide its command line for a while before it runs: it
// re-executes itself as `slow-shim ...` (no "process-shim" among its
// arguments), sleeps, then executes the real shim. That is what the kernel
// shows, for a much shorter time, between cmd.Start returning and the new
// program's arguments being set up.
const slowShimEnv = "FLOTILLA_TEST_SLOW_SHIM"

const slowShimStage = "slow-shim"

func maybeRunSlowShim() {
	if len(os.Args) < 2 {
		return
	}
	switch {
	case os.Args[1] == "process-shim" && os.Getenv(slowShimEnv) != "":
		reexec(slowShimStage)
	case os.Args[1] == slowShimStage:
		time.Sleep(300 * time.Millisecond)
		reexec("process-shim")
	}
}

func reexec(stage string) {
	self, err := os.Executable()
	if err == nil {
		env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return stage == "process-shim" && strings.HasPrefix(kv, slowShimEnv+"=")
		})
		err = syscall.Exec(self, append([]string{self, stage}, os.Args[2:]...), env)
	}
	fmt.Fprintln(os.Stderr, "slow shim:", err)
	os.Exit(3)
}

// A program that exits at once has started (and then ended): Start returns
// a handle and Wait the exit status, never "the shim exited before starting
// the program". Here the shim's command line stays unrecognisable for
// 300 ms after it was started, which used to be taken for a dead shim.
func TestQuickExitWhileShimCommandLineHidden(t *testing.T) {
	t.Setenv(slowShimEnv, "1")
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct {
		id   string
		spec driver.Spec
		code int
	}{
		{"true", driver.Spec{TaskID: "q-true", Image: "/bin/true"}, 0},
		{"false", driver.Spec{TaskID: "q-false", Image: "false"}, 1},
		{"sleep", sh("q-sleep", "exec sleep 60"), -1},
	} {
		start := time.Now()
		h, err := d.Start(ctx, tc.spec)
		if err != nil {
			t.Fatalf("%s: Start: %v", tc.id, err)
		}
		if took := time.Since(start); took < 250*time.Millisecond {
			t.Errorf("%s: Start returned after %s: the slow shim did not run", tc.id, took)
		}
		if tc.code < 0 {
			if running, _, err := d.Recover(ctx, h); err != nil || !running {
				t.Errorf("%s: Recover: running=%v %v", tc.id, running, err)
			}
		} else if st, err := d.Wait(ctx, h); err != nil || st.ExitCode != tc.code {
			t.Errorf("%s: Wait: %+v %v, want exit code %d", tc.id, st, err, tc.code)
		}
		if err := d.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
}

// Many programs that exit at once, started concurrently on a busy machine:
// every Start succeeds and every exit status is 0.
func TestQuickExitsUnderLoad(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 60*time.Second)
	const total, parallel = 60, 12
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range total {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			h, err := d.Start(ctx, driver.Spec{TaskID: fmt.Sprintf("load%d", i), Image: "/bin/true"})
			if err != nil {
				t.Errorf("Start %d: %v", i, err)
				return
			}
			if st, err := d.Wait(ctx, h); err != nil || st.ExitCode != 0 {
				t.Errorf("Wait %d: %+v %v", i, st, err)
			}
			if err := d.Remove(ctx, h); err != nil {
				t.Errorf("Remove %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
}

// The docker CLI and the moby client send a bare program name as
// "NAME:latest"; the driver runs NAME. Only a bare name loses the suffix.
func TestLatestSuffixOfBareProgramName(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 20*time.Second)
	h, err := d.Start(ctx, driver.Spec{TaskID: "l1", Image: "sh:latest", Args: []string{"-c", "echo ran $0"}})
	if err != nil {
		t.Fatalf("Start sh:latest: %v", err)
	}
	if st, err := d.Wait(ctx, h); err != nil || st.ExitCode != 0 {
		t.Fatalf("Wait: %+v %v", st, err)
	}
	if got := lines(logs(t, d, h, driver.LogOptions{Tail: -1})); got != "1:ran /bin/sh\n" && got != "1:ran /usr/bin/sh\n" {
		t.Errorf("output %q, want sh's path as $0", got)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]driver.Spec{
		"a path keeps its suffix": {TaskID: "l2", Image: "/bin/sh:latest"},
		"only :latest is dropped": {TaskID: "l3", Image: "sh:1.0"},
		"nothing left":            {TaskID: "l4", Image: ":latest"},
		"a command is used as is": {TaskID: "l5", Command: []string{"sh:latest"}},
	} {
		if _, err := d.Start(ctx, spec); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%s: Start %+v: %v, want Invalid", name, spec, err)
		}
	}
}
