package driver

import (
	"context"
	"time"
)

// Docker's health check defaults, applied to a zero field.
const (
	DefaultHealthInterval      = 30 * time.Second
	DefaultHealthTimeout       = 30 * time.Second
	DefaultHealthStartInterval = 5 * time.Second
	DefaultHealthRetries       = 3
)

// HealthCheck is a task's health check, as Docker's HealthConfig: Test is
// ["CMD", program, args...], ["CMD-SHELL", command] (run with /bin/sh -c),
// ["NONE"] (no check, not even the image's), or empty (docker: the image's
// HEALTHCHECK with these timings). Zero durations and retries take the
// defaults above.
type HealthCheck struct {
	Test                                          []string
	Interval, Timeout, StartPeriod, StartInterval time.Duration
	Retries                                       int
}

// Disabled reports whether the check turns health checking off.
func (h *HealthCheck) Disabled() bool {
	return h != nil && len(h.Test) > 0 && h.Test[0] == "NONE"
}

// Runnable reports whether the check names a command of its own (the
// process driver has no image to take one from).
func (h *HealthCheck) Runnable() bool {
	return h != nil && len(h.Test) > 0 && (h.Test[0] == "CMD" || h.Test[0] == "CMD-SHELL")
}

// WithDefaults returns the check with Docker's defaults in its zero fields.
func (h HealthCheck) WithDefaults() HealthCheck {
	if h.Interval == 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.StartInterval == 0 {
		h.StartInterval = DefaultHealthStartInterval
	}
	if h.Retries == 0 {
		h.Retries = DefaultHealthRetries
	}
	return h
}

// HealthStatus is a task's health as Docker names it; "" when the task has
// no health check.
type HealthStatus string

// Health statuses.
const (
	HealthNone      HealthStatus = ""
	HealthStarting  HealthStatus = "starting"
	HealthHealthy   HealthStatus = "healthy"
	HealthUnhealthy HealthStatus = "unhealthy"
)

// Health is what a task's health check last found.
type Health struct {
	Status        HealthStatus
	FailingStreak int
	// Last is the newest check's result, e.g. "exit status 1: no such
	// file" or "timed out after 30s"; empty before the first check.
	Last string
}

// HealthChecker is implemented by drivers that run health checks. The
// check runs outside the agent (the Docker Engine, the process shim), so
// health keeps being tracked across agent restarts and Health can be
// asked of a recovered handle.
type HealthChecker interface {
	Health(ctx context.Context, h Handle) (Health, error)
}
