package orchestrator

import (
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// Docker's restart defaults.
const (
	defaultRestartDelay = 5 * time.Second
)

func restartPolicy(s *state.Service) swarm.RestartPolicy {
	rp := swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
	if p := s.Spec.TaskTemplate.RestartPolicy; p != nil {
		rp = *p
		if rp.Condition == "" {
			rp.Condition = swarm.RestartPolicyConditionAny
		}
	}
	if rp.Delay == nil {
		d := defaultRestartDelay
		rp.Delay = &d
	}
	return rp
}

// endedOnItsOwn reports whether a task stopped without a manager asking:
// only those count for the restart policy.
func endedOnItsOwn(t *state.Task) bool {
	return t.ShutdownReason == state.ReasonEnded || (active(t) && Terminal(t.Status.State))
}

// startDecision says whether a slot (or a global service's node) whose
// latest task is last may get a new task now, and if not, when to look
// again (zero: never, per the restart policy).
func startDecision(v *view, s *state.Service, history []*state.Task, last *state.Task) (ok bool, retryAt time.Time) {
	if last == nil || !endedOnItsOwn(last) || last.SpecVersion != s.SpecVersion {
		return true, time.Time{} // new slot, or a task we stopped ourselves
	}
	rp := restartPolicy(s)
	switch rp.Condition {
	case swarm.RestartPolicyConditionNone:
		return false, time.Time{}
	case swarm.RestartPolicyConditionOnFailure:
		if last.Status.State == swarm.TaskStateComplete {
			return false, time.Time{}
		}
	}
	if rp.MaxAttempts != nil && *rp.MaxAttempts > 0 {
		var restarts uint64
		for _, t := range history {
			if t.ID == last.ID || !endedOnItsOwn(t) || t.SpecVersion != s.SpecVersion {
				continue
			}
			// The window ends when the latest task ended, not now: the
			// decision then never changes as time passes, so once the
			// policy gives up it gives up for good, as docker's does.
			if rp.Window == nil || *rp.Window == 0 || statusTime(last).Sub(statusTime(t)) <= *rp.Window {
				restarts++
			}
		}
		if restarts >= *rp.MaxAttempts {
			return false, time.Time{}
		}
	}
	at := statusTime(last).Add(*rp.Delay)
	if v.now.Before(at) {
		v.wakeAt(at)
		return false, at
	}
	return true, time.Time{}
}

// latest returns the most recently created task of a set.
func latest(tasks []*state.Task) *state.Task {
	var out *state.Task
	for _, t := range tasks {
		if out == nil || t.CreatedAt.After(out.CreatedAt) || (t.CreatedAt.Equal(out.CreatedAt) && t.Meta.Version.Index > out.Meta.Version.Index) {
			out = t
		}
	}
	return out
}

// statusTime is when the task's status last changed, by the leader's clock
// when known (a worker's clock may be off).
func statusTime(t *state.Task) time.Time {
	if !t.StatusAt.IsZero() {
		return t.StatusAt
	}
	return t.Status.Timestamp
}
