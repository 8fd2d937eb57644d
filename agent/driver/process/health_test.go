//go:build linux

package process_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/process"
)

// waitHealth polls d.Health until want, failing the test on a deadline.
func waitHealth(t *testing.T, d driver.HealthChecker, h driver.Handle, want driver.HealthStatus, within time.Duration) driver.Health {
	t.Helper()
	var got driver.Health
	var err error
	if !pollUntil(within, func() bool {
		got, err = d.Health(t.Context(), h)
		return err == nil && got.Status == want
	}) {
		t.Fatalf("health of %s: %+v (err %v), want %q within %s", h.ID, got, err, want, within)
	}
	return got
}

func TestHealthCheckRunsBesideTheTask(t *testing.T) {
	d, root := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "ok"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := sh("h1", "exec sleep 1000")
	spec.Dir, spec.Env = work, []string{"FOO=bar"}
	// Same working directory and environment as the task, through /bin/sh.
	spec.Healthcheck = &driver.HealthCheck{Test: []string{"CMD-SHELL", `test "$FOO" = bar && test -f ok && echo fine`},
		Interval: 30 * time.Millisecond, Retries: 2}
	h, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove(ctx, h)
	if got, err := d.Health(ctx, h); err != nil || got.Status == driver.HealthNone {
		t.Fatalf("right after Start: %+v %v, want starting or healthy", got, err)
	}
	got := waitHealth(t, d, h, driver.HealthHealthy, 10*time.Second)
	if got.Last != "exit status 0: fine\n" {
		t.Errorf("last result %q, want the check's output", got.Last)
	}

	// A restarted agent's driver reads the same health, and sees it turn.
	d2, err := process.New(process.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(work, "ok")); err != nil {
		t.Fatal(err)
	}
	got = waitHealth(t, d2, h, driver.HealthUnhealthy, 10*time.Second)
	if got.FailingStreak < 2 || got.Last != "exit status 1" {
		t.Errorf("unhealthy: %+v, want a streak of 2 or more and exit status 1", got)
	}
	// The task itself keeps running: acting on health is the agent's job.
	if running, _, err := d2.Recover(ctx, h); err != nil || !running {
		t.Errorf("task after turning unhealthy: running %v, err %v", running, err)
	}
	if err := d2.Stop(ctx, h, -1); err != nil {
		t.Fatal(err)
	}
}

func TestHealthCheckStartPeriod(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	spec := sh("sp", "exec sleep 1000")
	const period = 700 * time.Millisecond
	spec.Healthcheck = &driver.HealthCheck{Test: []string{"CMD", "false"},
		Interval: 20 * time.Millisecond, StartPeriod: period, StartInterval: 20 * time.Millisecond, Retries: 1}
	before := time.Now()
	h, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove(ctx, h)
	// Failures inside the start period do not count...
	if !pollUntil(10*time.Second, func() bool {
		got, err := d.Health(ctx, h)
		if err != nil || got.Status == driver.HealthUnhealthy {
			return true
		}
		if got.Last != "" && got.FailingStreak != 0 {
			t.Errorf("failure counted within the start period: %+v", got)
		}
		return got.Last != "" && time.Since(before) > period/2
	}) {
		t.Fatal("no check ran within the start period")
	}
	// ...the first one after it does (Retries 1).
	waitHealth(t, d, h, driver.HealthUnhealthy, 10*time.Second)
	if el := time.Since(before); el < period {
		t.Errorf("unhealthy after %s, inside the %s start period", el, period)
	}
}

func TestHealthCheckFailures(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	for _, tc := range []struct {
		name string
		hc   driver.HealthCheck
		last string
	}{
		// The hung check is killed (with what it started: newDriver's
		// cleanup finds any leftover).
		{"timeout", driver.HealthCheck{Test: []string{"CMD-SHELL", "sleep 100 & sleep 100"}, Timeout: 50 * time.Millisecond}, "Health check exceeded timeout (50ms)"},
		{"missing-program", driver.HealthCheck{Test: []string{"CMD", "/no/such/check"}}, "cannot run the health check"},
		{"exit-code", driver.HealthCheck{Test: []string{"CMD-SHELL", "echo broken >&2; exit 3"}}, "exit status 3: broken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := sh("f-"+tc.name, "exec sleep 1000")
			tc.hc.Interval, tc.hc.Retries = 20*time.Millisecond, 1
			spec.Healthcheck = &tc.hc
			h, err := d.Start(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Remove(ctx, h)
			got := waitHealth(t, d, h, driver.HealthUnhealthy, 10*time.Second)
			if !strings.HasPrefix(got.Last, tc.last) {
				t.Errorf("last result %q, want it to start with %q", got.Last, tc.last)
			}
		})
	}
}

func TestNoHealthCheck(t *testing.T) {
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	for i, hc := range []*driver.HealthCheck{nil, {Test: []string{"NONE"}}, {Interval: time.Second}} {
		spec := sh("n"+string(rune('a'+i)), "exec sleep 1000")
		spec.Healthcheck = hc
		h, err := d.Start(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := d.Health(ctx, h); err != nil || got != (driver.Health{}) {
			t.Errorf("%+v: health %+v %v, want none", hc, got, err)
		}
		if err := d.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
}

// The check runs as the task's user, not the agent's.
func TestHealthCheckRunsAsTheTaskUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch users")
	}
	d, _ := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	spec := sh("hu", "exec sleep 1000")
	spec.User = "65534:65534"
	spec.Healthcheck = &driver.HealthCheck{Test: []string{"CMD-SHELL", `test "$(id -u):$(id -g)" = 65534:65534`},
		Interval: 20 * time.Millisecond, Retries: 1}
	h, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Remove(ctx, h)
	waitHealth(t, d, h, driver.HealthHealthy, 10*time.Second)
}
