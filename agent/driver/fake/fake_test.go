package fake_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func spec(id string, env ...string) driver.Spec {
	return driver.Spec{TaskID: id, ServiceName: "svc", NodeID: "n1", Slot: 1, Image: "fake", Env: env}
}

func start(t *testing.T, d *fake.Driver, s driver.Spec) driver.Handle {
	t.Helper()
	h, err := d.Start(ctxT(t, 10*time.Second), s)
	if err != nil {
		t.Fatalf("Start %s: %v", s.TaskID, err)
	}
	return h
}

func TestRunsUntilStopped(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 10*time.Second)
	h := start(t, d, spec("t1"))
	if h.Driver != "fake" || h.ID != "t1" || h.StartedAt.IsZero() {
		t.Fatalf("handle %+v", h)
	}
	if running, _, err := d.Recover(ctx, h); !running || err != nil {
		t.Fatalf("Recover: %v %v", running, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := d.Wait(wctx, h); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a running task: %v", err)
	}
	waited := make(chan driver.ExitStatus, 1)
	go func() { st, _ := d.Wait(ctx, h); waited <- st }()
	if err := d.Stop(ctx, h, time.Second); err != nil {
		t.Fatal(err)
	}
	st := <-waited
	if st.ExitCode != 143 || st.Err != "signal: terminated" || st.FinishedAt.IsZero() {
		t.Fatalf("status %+v", st)
	}
	if running, st2, err := d.Recover(ctx, h); running || err != nil || st2 != st {
		t.Fatalf("Recover after stop: %v %+v %v", running, st2, err)
	}
	if err := d.Stop(ctx, h, time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Recover(ctx, h); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("Recover after Remove: %v", err)
	}
	if _, err := d.Wait(ctx, h); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("Wait after Remove: %v", err)
	}
	if err := d.Stop(ctx, h, 0); err != nil {
		t.Fatalf("Stop after Remove: %v", err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestExitAfter(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 10*time.Second)
	t0 := time.Now()
	h := start(t, d, spec("t1", "FAKE_EXIT_AFTER=150ms", "FAKE_EXIT_CODE=3"))
	if running, _, _ := d.Recover(ctx, h); !running {
		t.Fatal("not running right after Start")
	}
	st, err := d.Wait(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < 150*time.Millisecond {
		t.Errorf("exited after %v", el)
	}
	if st.ExitCode != 3 || st.Err != "exit status 3" || st.FinishedAt.Before(t0.Add(150*time.Millisecond)) {
		t.Fatalf("status %+v", st)
	}
	// Stop after the exit keeps the real status.
	if err := d.Stop(ctx, h, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, st2, _ := d.Recover(ctx, h); st2 != st {
		t.Fatalf("status changed by Stop: %+v", st2)
	}

	// FAKE_EXIT_CODE alone: exits at once; exit 0 is not a failure.
	h2 := start(t, d, spec("t2", "FAKE_EXIT_CODE=0"))
	if st, err := d.Wait(ctx, h2); err != nil || st.Failed() {
		t.Fatalf("status %+v %v", st, err)
	}
	// OOM.
	h3 := start(t, d, spec("t3", "FAKE_OOM=1"))
	if st, err := d.Wait(ctx, h3); err != nil || !st.OOMKilled || st.ExitCode != 137 {
		t.Fatalf("status %+v %v", st, err)
	}
	// Args win over Env.
	s := spec("t4", "FAKE_EXIT_CODE=1")
	s.Args = []string{"FAKE_EXIT_CODE=9"}
	if st, err := d.Wait(ctx, start(t, d, s)); err != nil || st.ExitCode != 9 {
		t.Fatalf("status %+v %v", st, err)
	}
}

func TestStartFailures(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 10*time.Second)
	_, err := d.Start(ctx, spec("f1", "FAKE_FAIL_START=1"))
	if err == nil || errdefs.KindOf(err) != errdefs.KindUnknown {
		t.Errorf("FAKE_FAIL_START: %v (kind %v)", err, errdefs.KindOf(err))
	}
	if _, err := d.Start(ctx, spec("f2", "FAKE_FAIL_START=disk on fire")); err == nil || err.Error() != "disk on fire" {
		t.Errorf("FAKE_FAIL_START message: %v", err)
	}
	if _, err := d.Start(ctx, spec("f3", "FAKE_INVALID=1")); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("FAKE_INVALID: %v", err)
	}
	if _, err := d.Start(ctx, spec("f4", "FAKE_EXIT_AFTER=soon")); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("bad duration: %v", err)
	}
	if _, err := d.Start(ctx, driver.Spec{TaskID: "f5"}); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("no image: %v", err)
	}
	// t0 before the deadline is set: the deadline is 30 ms after it.
	t0 := time.Now()
	hctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, err := d.Start(hctx, spec("f6", "FAKE_HANG_START=1")); !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) < 30*time.Millisecond {
		t.Errorf("FAKE_HANG_START: %v after %v", err, time.Since(t0))
	}
	t0 = time.Now()
	if _, err := d.Start(ctx, spec("f7", "FAKE_START_DELAY=30ms")); err != nil || time.Since(t0) < 30*time.Millisecond {
		t.Errorf("FAKE_START_DELAY: %v after %v", err, time.Since(t0))
	}
	if _, err := d.Start(ctx, spec("f7")); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("duplicate task ID: %v", err)
	}
	if running, existing, started := d.Stats(); running != 1 || existing != 1 || started != 1 {
		t.Errorf("Stats = %d %d %d", running, existing, started)
	}

	d2 := &fake.Driver{KnownImages: map[string]bool{"alpine": true}}
	if _, err := d2.Start(ctx, spec("k1")); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "not present on this node") {
		t.Errorf("unknown image: %v", err)
	}
	s := spec("k2")
	s.Image = "alpine"
	if _, err := d2.Start(ctx, s); err != nil {
		t.Errorf("known image: %v", err)
	}
}

func TestHooks(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	record := func(s string) { mu.Lock(); calls = append(calls, s); mu.Unlock() }
	d := &fake.Driver{
		OnStart: func(s driver.Spec) error {
			record("start " + s.TaskID)
			if s.TaskID == "bad" {
				return errdefs.Invalid("no bad tasks")
			}
			return nil
		},
		OnStop:   func(h driver.Handle) { record("stop " + h.ID) },
		OnRemove: func(h driver.Handle) { record("remove " + h.ID) },
	}
	ctx := ctxT(t, 10*time.Second)
	if _, err := d.Start(ctx, spec("bad")); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Fatalf("hooked start: %v", err)
	}
	h := start(t, d, spec("good"))
	if got, ok := d.Spec("good"); !ok || got.ServiceName != "svc" {
		t.Fatalf("Spec: %+v %v", got, ok)
	}
	_ = d.Stop(ctx, h, 0)
	_ = d.Remove(ctx, h)
	if got := strings.Join(calls, ","); got != "start bad,start good,stop good,remove good" {
		t.Fatalf("hook calls %s", got)
	}
}

func TestStopGraceAndKill(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 10*time.Second)
	h := start(t, d, spec("ignore", "FAKE_IGNORE_TERM=1"))
	t0 := time.Now()
	if err := d.Stop(ctx, h, 40*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < 40*time.Millisecond {
		t.Errorf("killed after %v", el)
	}
	if st, _ := d.Wait(ctx, h); st.ExitCode != 137 || st.Err != "signal: killed" {
		t.Fatalf("status %+v", st)
	}
	h = start(t, d, spec("slow", "FAKE_STOP_DELAY=30ms"))
	t0 = time.Now()
	if err := d.Stop(ctx, h, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < 30*time.Millisecond || el > 4*time.Second {
		t.Errorf("stopped after %v", el)
	}
	if st, _ := d.Wait(ctx, h); st.ExitCode != 143 {
		t.Fatalf("status %+v", st)
	}
	// Negative timeout: kill at once.
	h = start(t, d, spec("now", "FAKE_IGNORE_TERM=1"))
	if err := d.Stop(ctx, h, -1); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.Wait(ctx, h); st.ExitCode != 137 {
		t.Fatalf("status %+v", st)
	}
	// A stop cut short by its ctx leaves the task running.
	h = start(t, d, spec("stuck", "FAKE_IGNORE_TERM=1"))
	sctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := d.Stop(sctx, h, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop: %v", err)
	}
	if running, _, _ := d.Recover(ctx, h); !running {
		t.Fatal("task stopped")
	}
}

func collect(t *testing.T, d driver.Driver, h driver.Handle, opts driver.LogOptions, ctx context.Context) []string {
	t.Helper()
	ch := make(chan driver.LogMessage)
	errc := make(chan error, 1)
	go func() { errc <- d.Logs(ctx, h, opts, ch); close(ch) }()
	var got []string
	for m := range ch {
		got = append(got, fmt.Sprintf("%d:%s", m.Stream, m.Line))
	}
	if err := <-errc; err != nil && ctx.Err() == nil {
		t.Fatalf("Logs: %v", err)
	}
	return got
}

func TestLogs(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 10*time.Second)
	h := start(t, d, spec("l1", `FAKE_LOG=hello\nworld`, "FAKE_STDERR=oops"))
	if got := strings.Join(collect(t, d, h, driver.LogOptions{Tail: -1}, ctx), ","); got != "1:hello,1:world,2:oops" {
		t.Errorf("logs %s", got)
	}
	if got := strings.Join(collect(t, d, h, driver.LogOptions{Tail: 1}, ctx), ","); got != "2:oops" {
		t.Errorf("tail 1: %s", got)
	}
	// Follow: ticks every 10ms until the task exits after 55ms.
	h = start(t, d, spec("l2", "FAKE_LOG=tick", "FAKE_LOG_EVERY=10ms", "FAKE_EXIT_AFTER=55ms"))
	got := collect(t, d, h, driver.LogOptions{Follow: true, Tail: -1}, ctx)
	if strings.Join(got, ",") != "1:tick,1:tick 1,1:tick 2,1:tick 3,1:tick 4,1:tick 5" {
		t.Errorf("follow: %v", got)
	}
	// After the exit, the same lines without waiting; with tail.
	if got := collect(t, d, h, driver.LogOptions{Follow: true, Tail: 2}, ctx); strings.Join(got, ",") != "1:tick 4,1:tick 5" {
		t.Errorf("tail after exit: %v", got)
	}
	// Follow ends when the task is stopped.
	h = start(t, d, spec("l3", "FAKE_LOG_EVERY=5ms"))
	time.AfterFunc(30*time.Millisecond, func() { _ = d.Stop(context.Background(), h, 0) })
	if got := collect(t, d, h, driver.LogOptions{Follow: true, Tail: -1}, ctx); len(got) < 2 {
		t.Errorf("follow until stop: %v", got)
	}
	// Follow ends with ctx.
	h = start(t, d, spec("l4", "FAKE_LOG=x"))
	lctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if got := collect(t, d, h, driver.LogOptions{Follow: true, Tail: -1}, lctx); len(got) != 1 {
		t.Errorf("follow until ctx: %v", got)
	}
	// Since.
	if got := collect(t, d, h, driver.LogOptions{Tail: -1, Since: time.Now().Add(time.Minute)}, ctx); len(got) != 0 {
		t.Errorf("since: %v", got)
	}
}

func TestExitVanishList(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 10*time.Second)
	h1 := start(t, d, spec("a"))
	h2 := start(t, d, spec("b"))
	other := spec("c")
	other.NodeID = "n2"
	start(t, d, other)
	if err := d.Exit("a", 2); err != nil {
		t.Fatal(err)
	}
	if st, err := d.Wait(ctx, h1); err != nil || st.ExitCode != 2 {
		t.Fatalf("after Exit: %+v %v", st, err)
	}
	waited := make(chan error, 1)
	go func() { _, err := d.Wait(ctx, h2); waited <- err }()
	d.Vanish("b")
	if err := <-waited; !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("Wait on a vanished task: %v", err)
	}
	list, _ := d.List(ctx, "n1")
	if len(list) != 1 || list[0].TaskID != "a" || list[0].Running {
		t.Fatalf("List n1: %+v", list)
	}
	if list, _ := d.List(ctx, ""); len(list) != 2 {
		t.Fatalf("List all: %+v", list)
	}
	if err := d.Exit("zzz", 1); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("Exit unknown: %v", err)
	}
}

// An agent restart: a new agent shares the *Driver and recovers.
func TestRecoverAcrossAgentRestart(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 10*time.Second)
	hs := []driver.Handle{start(t, d, spec("r1")), start(t, d, spec("r2", "FAKE_EXIT_AFTER=1ms", "FAKE_EXIT_CODE=4"))}
	var agent2 driver.Driver = d
	if !pollUntil(time.Second, func() bool { r, _, _ := agent2.Recover(ctx, hs[1]); return !r }) {
		t.Fatal("r2 never ended")
	}
	if running, _, err := agent2.Recover(ctx, hs[0]); !running || err != nil {
		t.Fatalf("r1: %v %v", running, err)
	}
	if running, st, err := agent2.Recover(ctx, hs[1]); running || err != nil || st.ExitCode != 4 {
		t.Fatalf("r2: %v %+v %v", running, st, err)
	}
	if _, _, err := agent2.Recover(ctx, driver.Handle{Driver: "fake", ID: "never"}); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}

func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func TestConcurrent(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 20*time.Second)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := d.Start(ctx, spec(fmt.Sprint("c", i), "FAKE_LOG_EVERY=1ms"))
			if err != nil {
				t.Error(err)
				return
			}
			var inner sync.WaitGroup
			inner.Add(2)
			go func() { defer inner.Done(); _, _ = d.Wait(ctx, h) }()
			go func() {
				defer inner.Done()
				ch := make(chan driver.LogMessage, 100)
				_ = d.Logs(ctx, h, driver.LogOptions{Follow: true, Tail: -1}, ch)
			}()
			_ = d.Stop(ctx, h, time.Millisecond)
			inner.Wait()
			_ = d.Remove(ctx, h)
		}()
	}
	wg.Wait()
	if running, existing, started := d.Stats(); running != 0 || existing != 0 || started != 200 {
		t.Fatalf("Stats %d %d %d", running, existing, started)
	}
}

// 10,000 running tasks must cost no goroutine and little memory.
func TestTenThousandTasksAreCheap(t *testing.T) {
	d := fake.New()
	ctx := ctxT(t, 30*time.Second)
	const n = 10000
	specs := make([]driver.Spec, n)
	for i := range specs {
		specs[i] = spec(fmt.Sprintf("task-%05d", i))
		if i%2 == 0 {
			specs[i].Env = []string{"FAKE_EXIT_AFTER=1h"}
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	t0 := time.Now()
	for _, s := range specs {
		if _, err := d.Start(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(t0)
	runtime.GC()
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d starts in %v; heap +%d KiB (%d B/task); goroutines %d -> %d", n, el, heap/1024, heap/n, g0, g1)
	if g1 > g0 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	// Each task keeps the spec it was started with (about 640 B since
	// specs carry networks, DNS and mounts): 1 KiB a task is the budget.
	if heap > 10<<20 {
		t.Errorf("heap grew by %d MiB", heap>>20)
	}
	if running, _, _ := d.Stats(); running != n {
		t.Errorf("running %d", running)
	}
	runtime.KeepAlive(specs)
}

func BenchmarkStartStop(b *testing.B) {
	d := fake.New()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		h, err := d.Start(ctx, spec(fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		_ = d.Stop(ctx, h, 0)
		_ = d.Remove(ctx, h)
	}
}
