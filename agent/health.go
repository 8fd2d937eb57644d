package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// Status messages that tell health apart (flotilla's `service ps` shows
// them; the state alone is Docker's).
const (
	MessageHealthy   = "healthy"   // running because its health check passed
	MessageUnhealthy = "unhealthy" // failed because its health check did
)

// How often the agent reads a checked task's health from its driver (the
// driver's runner, not the agent, runs the checks): a quarter of the
// check's interval, within these bounds, so a result is seen soon after
// it is made without asking an engine about every container all the time.
const (
	minHealthPoll = 50 * time.Millisecond
	maxHealthPoll = time.Second
)

// healthPoll is the poll period for a task (HealthPoll if set).
func (e *Executor) healthPoll(t swarm.Task) time.Duration {
	if e.HealthPoll > 0 {
		return e.HealthPoll
	}
	interval := driver.DefaultHealthInterval
	if cs := t.Spec.ContainerSpec; cs != nil && cs.Healthcheck != nil && cs.Healthcheck.Interval > 0 {
		interval = cs.Healthcheck.Interval
	}
	if cs := t.Spec.ContainerSpec; cs != nil && cs.Healthcheck != nil && cs.Healthcheck.StartInterval > 0 {
		interval = min(interval, cs.Healthcheck.StartInterval)
	}
	return min(max(interval/4, minHealthPoll), maxHealthPoll)
}

func healthCheckOf(h *container.HealthConfig) *driver.HealthCheck {
	if h == nil {
		return nil
	}
	return &driver.HealthCheck{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
}

// checksHealth reports whether a just-started task has a health check,
// as its driver sees it (a docker image may bring its own). When the
// driver cannot tell, the task is treated as checked: watchHealth asks
// again, and a task is never called running before anyone knows.
func (e *Executor) checksHealth(ctx context.Context, d driver.Driver, h driver.Handle) bool {
	hc, ok := d.(driver.HealthChecker)
	if !ok {
		return false
	}
	hs, err := hc.Health(ctx, h)
	return err != nil || hs.Status != driver.HealthNone
}

// watchHealth follows a running task's health: the task becomes running
// at its first healthy result and fails as soon as it is unhealthy, as in
// swarm mode. The failure is reported at once, so the task leaves
// rotation before it has finished stopping. Caller holds e.mu.
func (e *Executor) watchHealth(r *record, d driver.Driver) {
	hc, ok := d.(driver.HealthChecker)
	if !ok || r.Handle == nil {
		return
	}
	h, id := *r.Handle, r.Task.ID
	poll := e.healthPoll(r.Task)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			hs, err := hc.Health(e.ctx, h)
			if e.ctx.Err() != nil {
				return
			}
			e.mu.Lock()
			if e.tasks[id] != r || terminal(r.Status.State) || r.stopping {
				e.mu.Unlock()
				return
			}
			done, before := false, r.Status.State
			switch {
			case err != nil:
				// The task may be gone: watch reports that. Else ask again.
				e.Log.Debug("read task health", "task", id, "err", err)
			case hs.Status == driver.HealthNone:
				e.setStatus(r, swarm.TaskStateRunning, "started", "", nil)
				done = true
			case hs.Status == driver.HealthHealthy:
				e.setStatus(r, swarm.TaskStateRunning, MessageHealthy, "", nil)
			case hs.Status == driver.HealthUnhealthy:
				e.unhealthy(r, d, hs)
				done = true
			}
			if r.Status.State != before {
				e.saveLocked() // the record on disk changes only with the state
			}
			e.mu.Unlock()
			if done {
				return
			}
			select {
			case <-e.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// unhealthy fails a task whose health check says it is unhealthy and
// stops it; the restart policy then replaces it. Caller holds e.mu.
func (e *Executor) unhealthy(r *record, d driver.Driver, hs driver.Health) {
	// Docker's words ("unhealthy container"), reported before the task has
	// stopped, so without its exit code.
	msg := "task: unhealthy container"
	if hs.Last != "" {
		msg += fmt.Sprintf(": the health check failed %d times in a row (last: %s)", hs.FailingStreak, hs.Last)
	}
	e.Log.Info("task is unhealthy: stopping it", "task", r.Task.ID, "last", hs.Last)
	r.Unhealthy = true
	e.setStatus(r, swarm.TaskStateFailed, MessageUnhealthy, msg, nil)
	e.stopInBackground(r, d)
}
