package docker_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/docker"
)

// waitHealth polls d.Health until want, failing the test on a deadline.
func waitHealth(t *testing.T, d *docker.Driver, h driver.Handle, want driver.HealthStatus) driver.Health {
	t.Helper()
	var got driver.Health
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err = d.Health(t.Context(), h)
		if err == nil && got.Status == want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("health of %s: %+v (err %v), want %q", h.ID, got, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSpecHealthCheckPassedToTheEngine(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	s := spec(t, "HEALTHY_FOR=1500ms")
	s.Healthcheck = &driver.HealthCheck{Test: []string{"CMD", "/app", "healthcheck"}, Interval: 100 * time.Millisecond, Retries: 2}
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	got := waitHealth(t, d, h, driver.HealthHealthy)
	if got.Last != "exit status 0: healthy" {
		t.Errorf("last result %q, want the check's output", got.Last)
	}
	got = waitHealth(t, d, h, driver.HealthUnhealthy)
	if got.FailingStreak < 2 || !strings.HasPrefix(got.Last, "exit status 1: not healthy") {
		t.Errorf("unhealthy: %+v, want a streak of 2 or more and the check's failure", got)
	}
	// The driver only reports: the container still runs.
	if running, _, err := d.Recover(ctx, h); err != nil || !running {
		t.Errorf("unhealthy container: running %v, err %v", running, err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func TestImageHealthCheck(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)

	// No check in the spec: the image's HEALTHCHECK applies.
	s := spec(t, "HEALTHY_FOR=10m")
	s.Image = healthImage
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	waitHealth(t, d, h, driver.HealthHealthy)

	// ["NONE"] turns it off.
	s = spec(t)
	s.Image, s.Healthcheck = healthImage, &driver.HealthCheck{Test: []string{"NONE"}}
	hNone, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.Health(ctx, hNone); err != nil || got != (driver.Health{}) {
		t.Errorf("--no-healthcheck on an image with a HEALTHCHECK: health %+v %v, want none", got, err)
	}

	// Timings alone keep the image's command (the engine merges them).
	s = spec(t) // no HEALTHY_FOR: the image's check fails
	s.Image, s.Healthcheck = healthImage, &driver.HealthCheck{Interval: 50 * time.Millisecond, Retries: 1}
	hTimed, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	waitHealth(t, d, hTimed, driver.HealthUnhealthy)
	ins, err := d.Client().ContainerInspect(ctx, hTimed.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hc := ins.Container.Config.Healthcheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/app", "healthcheck"}) ||
		hc.Interval != 50*time.Millisecond || hc.Retries != 1 {
		t.Errorf("spec timings on the image's check: container's check %+v, want the image's command with the spec's timings", hc)
	}

	// An image without one, and no check in the spec: no health at all.
	hPlain, err := d.Start(ctx, spec(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.Health(ctx, hPlain); err != nil || got != (driver.Health{}) {
		t.Errorf("no health check anywhere: health %+v %v, want none", got, err)
	}
	// Its handle says so: Health does not ask the engine, which no longer
	// knows the container.
	if err := d.Remove(ctx, hPlain); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Health(ctx, hPlain); err != nil || got != (driver.Health{}) {
		t.Errorf("no health check, container removed: health %+v %v, want none without asking the engine", got, err)
	}
}
