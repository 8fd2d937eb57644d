//go:build linux

package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/process"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// The test binary doubles as the shim: the driver runs
// `<test binary> process-shim --dir ... -- program`.
func TestMain(m *testing.M) {
	maybeRunSlowShim()
	process.MaybeRunShim()
	// Shims are this binary: with -race it would linger 1 s at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

// newDriver returns a driver on a fresh root and checks, at the end of the
// test, that no process of that root is left.
func newDriver(t *testing.T) (*process.Driver, string) {
	t.Helper()
	root := t.TempDir()
	d, err := process.New(process.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var left []string
		ok := pollUntil(5*time.Second, func() bool {
			left = processesUnder(root)
			return len(left) == 0
		})
		if !ok {
			t.Errorf("processes left behind: %v", left)
			for _, p := range left {
				pid, _ := strconv.Atoi(strings.Fields(p)[0])
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return d, root
}

// processesUnder lists live processes whose command line mentions root (the
// shims), or whose session is led by such a process (the programs).
func processesUnder(root string) []string {
	ents, _ := os.ReadDir("/proc")
	shims := map[int]bool{}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(b), root) {
			shims[pid] = true
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || shims[pid] {
			continue
		}
		if sid := sessionOf(pid); shims[sid] {
			b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

func sessionOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 || f[0] == "Z" {
		return 0
	}
	sid, _ := strconv.Atoi(f[3])
	return sid
}

func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func sh(id, script string) driver.Spec {
	return driver.Spec{TaskID: id, ServiceName: "svc", Slot: 1, Image: "sh", Args: []string{"-c", script}}
}

func logs(t *testing.T, d driver.Driver, h driver.Handle, opts driver.LogOptions) []driver.LogMessage {
	t.Helper()
	ch := make(chan driver.LogMessage)
	errc := make(chan error, 1)
	go func() { errc <- d.Logs(ctxT(t, 20*time.Second), h, opts, ch); close(ch) }()
	var got []driver.LogMessage
	for m := range ch {
		got = append(got, m)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Logs: %v", err)
	}
	return got
}

func lines(msgs []driver.LogMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(strconv.Itoa(m.Stream) + ":" + string(m.Line) + "\n")
	}
	return b.String()
}

func TestStartLogsExitCode(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	wd := t.TempDir()
	spec := sh("t1", `echo "out $FOO"; echo err >&2; pwd; exit 3`)
	spec.Env = []string{"FOO=bar"}
	spec.Dir = wd
	h, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if h.Driver != "process" || h.ID != "t1" || h.PID <= 0 || h.StartedAt.IsZero() {
		t.Fatalf("handle %+v", h)
	}
	st, err := d.Wait(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if st.ExitCode != 3 || st.Err != "exit status 3" || st.FinishedAt.IsZero() {
		t.Fatalf("status %+v", st)
	}
	got := logs(t, d, h, driver.LogOptions{Tail: -1})
	all := lines(got)
	for _, want := range []string{"1:out bar\n", "2:err\n", "1:" + wd + "\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("logs lack %q:\n%s", want, all)
		}
	}
	for _, m := range got {
		if m.Time.IsZero() || time.Since(m.Time) > time.Minute {
			t.Errorf("bad time %v", m.Time)
		}
	}
	// stdout and stderr are separate pipes: their relative order is not
	// guaranteed, but the file's last record is the tail.
	if tail := logs(t, d, h, driver.LogOptions{Tail: 1}); len(tail) != 1 || string(tail[0].Line) != string(got[len(got)-1].Line) {
		t.Errorf("tail 1: %q", lines(tail))
	}
	if none := logs(t, d, h, driver.LogOptions{Tail: 0}); len(none) != 0 {
		t.Errorf("tail 0: %q", lines(none))
	}
	if later := logs(t, d, h, driver.LogOptions{Tail: -1, Since: time.Now().Add(time.Hour)}); len(later) != 0 {
		t.Errorf("since future: %q", lines(later))
	}
	// A successful exit.
	h2, err := d.Start(ctx, sh("t2", "exit 0"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := d.Wait(ctx, h2); err != nil || st.ExitCode != 0 || st.Err != "" || st.Failed() {
		t.Fatalf("status %+v %v", st, err)
	}
	for _, h := range []driver.Handle{h, h2} {
		if err := d.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFollowLogs(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	// Prints after Logs has started following, and a very long and a
	// non-UTF-8 line.
	h, err := d.Start(ctx, sh("f1", `for i in 1 2 3; do echo line $i; sleep 0.05; done
head -c 20000 /dev/zero | tr '\0' x; echo
printf '\377\376\n' >&2
exit 1`))
	if err != nil {
		t.Fatal(err)
	}
	got := logs(t, d, h, driver.LogOptions{Follow: true, Tail: -1})
	if len(got) < 6 {
		t.Fatalf("follow got %d lines:\n%s", len(got), lines(got))
	}
	for i := 0; i < 3; i++ {
		if want := "line " + strconv.Itoa(i+1); string(got[i].Line) != want {
			t.Errorf("line %d = %q, want %q", i, got[i].Line, want)
		}
	}
	// 20000 x's are cut at 16 KiB, as docker does. (The stderr line may
	// come between the chunks: the two pipes are read independently.)
	var long []driver.LogMessage
	for _, m := range got[3:] {
		if m.Stream == 1 {
			long = append(long, m)
		}
	}
	if len(long) == 0 || len(long[0].Line) != 16*1024-1 && len(long[0].Line) != 16*1024 {
		t.Errorf("long line chunks: %d, first of %d bytes", len(long), len(append(long, driver.LogMessage{})[0].Line))
	}
	var total int
	for _, m := range long {
		total += len(m.Line)
	}
	if total != 20000 {
		t.Errorf("long line total %d bytes", total)
	}
	var binary bool
	for _, m := range got {
		binary = binary || (m.Stream == 2 && string(m.Line) == "\xff\xfe")
	}
	if !binary {
		t.Errorf("the non-UTF-8 stderr line is missing")
	}
	// The task has exited: Follow returns at once with everything.
	if again := logs(t, d, h, driver.LogOptions{Follow: true, Tail: 2}); len(again) != 2 {
		t.Errorf("follow of an exited task with tail 2: %d lines", len(again))
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func TestFollowLogsCancel(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	h, err := d.Start(ctx, sh("c1", `echo hi; exec sleep 60`))
	if err != nil {
		t.Fatal(err)
	}
	lctx, cancel := context.WithCancel(ctx)
	ch := make(chan driver.LogMessage)
	errc := make(chan error, 1)
	go func() { errc <- d.Logs(lctx, h, driver.LogOptions{Follow: true, Tail: -1}, ch) }()
	if m := <-ch; string(m.Line) != "hi" {
		t.Fatalf("got %q", m.Line)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Logs after cancel: %v", err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func waitForLine(t *testing.T, d driver.Driver, h driver.Handle, want string) {
	t.Helper()
	if !pollUntil(10*time.Second, func() bool {
		return strings.Contains(lines(logs(t, d, h, driver.LogOptions{Tail: -1})), want)
	}) {
		t.Fatalf("task never printed %q", want)
	}
}

func TestStopGraceful(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	h, err := d.Start(ctx, sh("s1", `trap 'echo got term; exit 0' TERM; echo ready; while :; do sleep 0.02; done`))
	if err != nil {
		t.Fatal(err)
	}
	waitForLine(t, d, h, "ready")
	waited := make(chan driver.ExitStatus, 1)
	go func() { st, _ := d.Wait(ctx, h); waited <- st }()
	if err := d.Stop(ctx, h, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st := <-waited
	if st.ExitCode != 0 {
		t.Fatalf("graceful stop: %+v", st)
	}
	waitForLine(t, d, h, "got term")
	// Stopping again, and stopping an exited task, is fine.
	if err := d.Stop(ctx, h, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	// Ignores SIGTERM, and has a child in its process group.
	h, err := d.Start(ctx, sh("k1", `trap '' TERM; sleep 60 & echo ready; while :; do sleep 0.02; done`))
	if err != nil {
		t.Fatal(err)
	}
	waitForLine(t, d, h, "ready")
	t0 := time.Now()
	if err := d.Stop(ctx, h, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < 300*time.Millisecond {
		t.Errorf("killed after %v, before the grace period", el)
	}
	st, err := d.Wait(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if st.ExitCode != 137 || st.Err != "signal: killed" {
		t.Fatalf("status %+v", st)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func TestTermExitStatus(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	h, err := d.Start(ctx, driver.Spec{TaskID: "term", Command: []string{"sleep"}, Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, h, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := d.Wait(ctx, h)
	if err != nil || st.ExitCode != 143 || st.Err != "signal: terminated" {
		t.Fatalf("status %+v %v", st, err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

// An agent restart: the handle is saved as JSON, the driver value is
// dropped, a new one on the same root takes over.
func TestRecoverAfterAgentRestart(t *testing.T) {
	d1, root := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	h, err := d1.Start(ctx, sh("r1", `trap 'echo bye; exit 7' TERM; echo up; while :; do sleep 0.02; done`))
	if err != nil {
		t.Fatal(err)
	}
	hQuick, err := d1.Start(ctx, sh("r2", `echo done; exit 5`))
	if err != nil {
		t.Fatal(err)
	}
	saved, err := json.Marshal([]driver.Handle{h, hQuick})
	if err != nil {
		t.Fatal(err)
	}
	waitForLine(t, d1, h, "up")
	d1 = nil

	d2, err := process.New(process.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	var hs []driver.Handle
	if err := json.Unmarshal(saved, &hs); err != nil {
		t.Fatal(err)
	}
	running, _, err := d2.Recover(ctx, hs[0])
	if err != nil || !running {
		t.Fatalf("Recover running task: %v %v", running, err)
	}
	// The quick one ended while "the agent was down".
	var st driver.ExitStatus
	if !pollUntil(10*time.Second, func() bool {
		running, st, err = d2.Recover(ctx, hs[1])
		return err == nil && !running
	}) {
		t.Fatalf("Recover exited task: %v %+v %v", running, st, err)
	}
	if st.ExitCode != 5 {
		t.Errorf("exited task status %+v", st)
	}
	list, err := d2.List(ctx, "")
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %+v %v", list, err)
	}
	if other, err := d2.List(ctx, "another-node"); err != nil || len(other) != 0 {
		t.Fatalf("List of another node: %+v %v", other, err)
	}
	for _, l := range list {
		if l.Running != (l.TaskID == "r1") || l.Handle.PID <= 0 {
			t.Errorf("listed %+v", l)
		}
	}

	waited := make(chan driver.ExitStatus, 1)
	go func() {
		st, err := d2.Wait(ctx, hs[0])
		if err != nil {
			t.Error(err)
		}
		waited <- st
	}()
	if err := d2.Stop(ctx, hs[0], 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := <-waited; st.ExitCode != 7 {
		t.Fatalf("status after stop %+v", st)
	}
	waitForLine(t, d2, hs[0], "bye")
	for _, h := range hs {
		if err := d2.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
		if _, _, err := d2.Recover(ctx, h); !errdefs.Is(err, errdefs.KindNotFound) {
			t.Errorf("Recover after Remove: %v", err)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("root not empty after Remove: %v", ents)
	}
}

// If the shim itself is killed, the program dies with it and the task is
// reported as ended with an unknown status.
func TestShimKilled(t *testing.T) {
	d, root := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	h, err := d.Start(ctx, sh("z1", `exec sleep 60`))
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := strconv.Atoi(h.Extra["pid"])
	if err := syscall.Kill(h.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st, err := d.Wait(ctx, h)
	if err != nil || st.ExitCode != -1 || st.Err == "" {
		t.Fatalf("Wait: %+v %v", st, err)
	}
	if !pollUntil(5*time.Second, func() bool { return sessionOf(prog) == 0 }) { // gone or a zombie
		t.Errorf("program %d outlived its shim", prog)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "z1")); !os.IsNotExist(err) {
		t.Errorf("task dir left: %v", err)
	}
}

func TestRemoveRunningTask(t *testing.T) {
	d, root := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	h, err := d.Start(ctx, sh("rm1", `trap '' TERM; while :; do sleep 0.02; done`))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "rm1")); !os.IsNotExist(err) {
		t.Errorf("task dir left: %v", err)
	}
	if _, err := d.Wait(ctx, h); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Wait after Remove: %v", err)
	}
}

func TestUnknownHandle(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 10*time.Second)
	h := driver.Handle{Driver: "process", ID: "nope", PID: 1}
	if _, err := d.Wait(ctx, h); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Wait: %v", err)
	}
	if _, _, err := d.Recover(ctx, h); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Recover: %v", err)
	}
	if err := d.Logs(ctx, h, driver.LogOptions{}, make(chan driver.LogMessage)); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Logs: %v", err)
	}
	if err := d.Stop(ctx, h, time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Errorf("Remove: %v", err)
	}
	if _, err := d.Wait(ctx, driver.Handle{ID: "../x"}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("Wait with a bad ID: %v", err)
	}
}

func TestInvalidSpecs(t *testing.T) {
	d, root := newDriver(t)
	ctx := ctxT(t, 10*time.Second)
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("\x00\x01\x02\x03 not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]driver.Spec{
		"not in PATH":     {TaskID: "i1", Image: "no-such-program-flotilla"},
		"no such path":    {TaskID: "i2", Command: []string{"/no/such/program"}},
		"relative":        {TaskID: "i3", Image: "./nope", Dir: "/tmp"},
		"not executable":  {TaskID: "i4", Image: notExec},
		"exec format":     {TaskID: "i5", Image: garbage},
		"no working dir":  {TaskID: "i6", Image: "sh", Dir: "/no/such/dir"},
		"empty":           {TaskID: "i7"},
		"no task ID":      {Image: "sh"},
		"task ID as path": {TaskID: "../x", Image: "sh"},
		"unknown user":    {TaskID: "i8", Image: "sh", User: "no-such-user-flotilla"},
	} {
		if _, err := d.Start(ctx, spec); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%s: err = %v, want Invalid", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("failed starts left %v", ents)
	}
}

func TestConflict(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 10*time.Second)
	h, err := d.Start(ctx, sh("dup", "exec sleep 60"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, sh("dup", "exec sleep 60")); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("second start: %v", err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func TestUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch users")
	}
	d, _ := newDriver(t)
	ctx := ctxT(t, 10*time.Second)
	// By IDs, and by name as 'service create --user nobody' sends it.
	for i, user := range []string{"65534:65534", "nobody"} {
		spec := sh("u"+strconv.Itoa(i), "id -u; id -g")
		spec.User = user
		h, err := d.Start(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := d.Wait(ctx, h); err != nil || st.ExitCode != 0 {
			t.Fatalf("%s: %+v %v", user, st, err)
		}
		if got := lines(logs(t, d, h, driver.LogOptions{Tail: -1})); got != "1:65534\n1:65534\n" {
			t.Errorf("--user %s: id output %q", user, got)
		}
		if err := d.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
}

// The shim as main registers it: a cobra command.
func TestShimCommand(t *testing.T) {
	c := process.ShimCommand()
	if c.Name() != "process-shim" || !c.Hidden {
		t.Fatalf("command %q hidden=%v", c.Name(), c.Hidden)
	}
	dir := t.TempDir()
	c.SetArgs([]string{"--dir", dir, "--", "/bin/sh", "-c", "echo via cobra; exit 4"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "exit.json"))
	if err != nil || !strings.Contains(string(b), `"exit_code":4`) {
		t.Fatalf("exit.json %s %v", b, err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "output.log"))
	if !strings.Contains(string(b), `"l":"via cobra"`) || !strings.Contains(string(b), `"s":1`) {
		t.Fatalf("output.log %s", b)
	}

	// Registered under a root with persistent flags, as main does.
	root := &cobra.Command{Use: "flotilla"}
	root.PersistentFlags().StringP("host", "H", "", "")
	root.AddCommand(process.ShimCommand())
	dir = t.TempDir()
	root.SetArgs([]string{"process-shim", "--dir", dir, "--", "/bin/sh", "-c", "exit 6", "-H", "x"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "exit.json")); err != nil || !strings.Contains(string(b), `"exit_code":6`) {
		t.Fatalf("exit.json %s %v", b, err)
	}
}
