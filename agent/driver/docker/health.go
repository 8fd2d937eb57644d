package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/flotilla-org/flotilla/agent/driver"
)

var _ driver.HealthChecker = (*Driver)(nil)

// A handle's Extra[extraHealth] is healthNone when the container has no
// health check (seen as it started).
const (
	extraHealth = "health"
	healthNone  = "none"
)

// healthConfig is the container's health check: nil keeps the image's
// HEALTHCHECK (the engine applies it), ["NONE"] disables it, and a check
// with no Test keeps the image's command with the spec's timings (the
// engine merges them).
func healthConfig(h *driver.HealthCheck) *container.HealthConfig {
	if h == nil {
		return nil
	}
	return &container.HealthConfig{
		Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries,
	}
}

// noHealthCheck tells a container's (merged) health check is none.
func noHealthCheck(h *container.HealthConfig) bool {
	return h == nil || len(h.Test) == 0 || h.Test[0] == "NONE"
}

// Health implements driver.HealthChecker from the engine's own record
// (State.Health): the engine runs the checks, so they go on while the
// agent restarts.
func (d *Driver) Health(ctx context.Context, h driver.Handle) (driver.Health, error) {
	if h.Extra[extraHealth] == healthNone {
		return driver.Health{}, nil
	}
	ins, err := d.inspectManaged(ctx, h.ID)
	if err != nil {
		return driver.Health{}, err
	}
	if ins.State == nil || ins.State.Health == nil {
		return driver.Health{}, nil
	}
	hs := ins.State.Health
	out := driver.Health{FailingStreak: hs.FailingStreak}
	switch hs.Status {
	case container.Starting:
		out.Status = driver.HealthStarting
	case container.Healthy:
		out.Status = driver.HealthHealthy
	case container.Unhealthy:
		out.Status = driver.HealthUnhealthy
	default: // "none", or a status this driver does not know
		return driver.Health{}, nil
	}
	if n := len(hs.Log); n > 0 && hs.Log[n-1] != nil {
		r := hs.Log[n-1]
		out.Last = fmt.Sprintf("exit status %d", r.ExitCode)
		if o := strings.TrimSpace(r.Output); o != "" {
			out.Last += ": " + o
		}
	}
	return out, nil
}
