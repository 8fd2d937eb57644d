package orchestrator

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Docker's update defaults.
const (
	defaultMonitor = 5 * time.Second
)

func updating(s *state.Service) bool {
	return s.UpdateStatus != nil && (s.UpdateStatus.State == swarm.UpdateStateUpdating || s.UpdateStatus.State == swarm.UpdateStateRollbackStarted)
}

func rollingBack(s *state.Service) bool {
	return s.UpdateStatus != nil && s.UpdateStatus.State == swarm.UpdateStateRollbackStarted
}

func updateConfig(s *state.Service) swarm.UpdateConfig {
	cfg := swarm.UpdateConfig{Parallelism: 1, FailureAction: swarm.UpdateFailureActionPause, Monitor: defaultMonitor, Order: swarm.UpdateOrderStopFirst}
	src := s.Spec.UpdateConfig
	if rollingBack(s) {
		src = s.Spec.RollbackConfig
	}
	if src != nil {
		cfg.Parallelism = src.Parallelism
		cfg.Delay = src.Delay
		cfg.MaxFailureRatio = src.MaxFailureRatio
		if src.FailureAction != "" {
			cfg.FailureAction = src.FailureAction
		}
		if src.Monitor != 0 {
			cfg.Monitor = src.Monitor
		}
		if src.Order != "" {
			cfg.Order = src.Order
		}
	}
	return cfg
}

func isStopFirst(s *state.Service) bool { return updateConfig(s).Order != swarm.UpdateOrderStartFirst }

// advanceUpdate moves a rolling update (or rollback) on by at most one
// batch per pass. Everything it needs is in the state, so a new leader
// carries on an update its predecessor started.
func (o *Orchestrator) advanceUpdate(v *view, s *state.Service) []state.Op {
	if !updating(s) {
		return nil
	}
	cfg := updateConfig(s)
	started := time.Time{}
	if s.UpdateStatus.StartedAt != nil {
		started = *s.UpdateStatus.StartedAt
	}
	groups := map[string][]*state.Task{} // slot or node → tasks
	for _, t := range v.tasks[s.ID] {
		k := fmt.Sprint(t.Slot)
		if t.Slot == 0 {
			k = t.NodeID
		}
		groups[k] = append(groups[k], t)
	}
	var stale []*state.Task
	inFlight, total, failed := 0, 0, []*state.Task{}
	for _, tasks := range groups {
		var cur *state.Task // the active fresh task of the group
		var old *state.Task // an active stale task
		waiting := false    // stop-first: old stopping, new not made yet
		for _, t := range tasks {
			if t.SpecVersion == s.SpecVersion && !t.CreatedAt.Before(started) && (t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateRejected) {
				failed = append(failed, t)
			}
			switch {
			case active(t) && t.SpecVersion == s.SpecVersion:
				cur = t
			case active(t):
				old = t
			case t.ShutdownReason == state.ReasonUpdate && !Terminal(t.Status.State) && nodeAlive(v, t):
				waiting = true
			}
		}
		if cur == nil && old == nil && !waiting {
			if s.Spec.Mode.Replicated != nil && inSlots(s, tasks) ||
				s.Spec.Mode.Global != nil && nodeUsable(v.nodes[tasks[0].NodeID]) && o.sched.Eligible(v.nodes[tasks[0].NodeID], s) {
				inFlight++ // an empty slot the reconciler is about to fill
				total++
			}
			continue
		}
		total++
		switch {
		case cur != nil && !settled(v, cur, cfg.Monitor):
			inFlight++
		case cur == nil && old == nil && waiting:
			inFlight++
		case cur == nil && old != nil && s.Spec.Mode.Global != nil && v.nodes[old.NodeID] != nil &&
			v.nodes[old.NodeID].Spec.Availability == swarm.NodeAvailabilityPause:
			total-- // paused: its task is neither added nor updated
		case cur == nil && old != nil:
			if cfg.Order == swarm.UpdateOrderStartFirst {
				var fresh []*state.Task
				for _, t := range tasks {
					if t.SpecVersion == s.SpecVersion {
						fresh = append(fresh, t)
					}
				}
				if ok, _ := startDecision(v, s, fresh, latest(fresh)); !ok {
					inFlight++ // a failed new task waits out its restart delay
					continue
				}
			}
			stale = append(stale, old)
		}
	}
	if len(failed) > 0 && float32(len(failed)) > cfg.MaxFailureRatio*float32(max(total, 1)) {
		if op, ok := o.onFailure(v, s, cfg, failed[0]); ok {
			return []state.Op{op}
		}
	}
	if len(stale) == 0 && inFlight == 0 {
		return []state.Op{finishUpdate(v, s)}
	}
	p := int(cfg.Parallelism)
	if p == 0 {
		p = len(stale) + inFlight
	}
	room := p - inFlight
	if room <= 0 || len(stale) == 0 {
		return nil
	}
	if inFlight == 0 {
		if next := lastBatch(v, s, started).Add(cfg.Delay); v.now.Before(next) {
			v.wakeAt(next)
			return nil
		}
	}
	var ops []state.Op
	for _, t := range stale[:min(room, len(stale))] {
		if cfg.Order == swarm.UpdateOrderStartFirst {
			op, err := newTask(v, s, t.Slot, globalNode(t))
			if err != nil {
				v.addrFailed(s, err) // the old task runs on until an address is free
				continue
			}
			ops = append(ops, op)
		} else {
			ops = append(ops, shutdownOp(t, state.ReasonUpdate))
		}
	}
	return ops
}

// lastBatch is when the update last started a batch, read from the state
// (the newest task of the new spec made since the update began) so a new
// leader keeps the update delay its predecessor was counting.
func lastBatch(v *view, s *state.Service, started time.Time) time.Time {
	var last time.Time
	for _, t := range v.tasks[s.ID] {
		if t.SpecVersion == s.SpecVersion && !t.CreatedAt.Before(started) && t.CreatedAt.After(last) {
			last = t.CreatedAt
		}
	}
	return last
}

func globalNode(t *state.Task) string {
	if t.Slot == 0 {
		return t.NodeID
	}
	return ""
}

// settled: running for the whole monitor window.
func settled(v *view, t *state.Task, monitor time.Duration) bool {
	if t.Status.State != swarm.TaskStateRunning {
		return false
	}
	done := statusTime(t).Add(monitor)
	if v.now.Before(done) {
		v.wakeAt(done)
		return false
	}
	return true
}

// onFailure applies the update's failure action.
func (o *Orchestrator) onFailure(v *view, s *state.Service, cfg swarm.UpdateConfig, t *state.Task) (state.Op, bool) {
	u := s.Copy()
	now := v.now.UTC()
	switch {
	case cfg.FailureAction == swarm.UpdateFailureActionContinue:
		return state.Op{}, false
	case cfg.FailureAction == swarm.UpdateFailureActionRollback && !rollingBack(s) && s.PreviousSpec != nil:
		u.RollBack()
		u.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackStarted, StartedAt: &now,
			Message: fmt.Sprintf("update rolled back due to failure or early termination of task %s", t.ID)}
	default:
		st := swarm.UpdateStatePaused
		if rollingBack(s) {
			st = swarm.UpdateStateRollbackPaused
		}
		u.UpdateStatus = &swarm.UpdateStatus{State: st, StartedAt: s.UpdateStatus.StartedAt,
			Message: fmt.Sprintf("update paused due to failure or early termination of task %s", t.ID)}
	}
	return state.NewOp(state.TableServices, state.ActionUpdate, u, s.Version.Index), true
}

func finishUpdate(v *view, s *state.Service) state.Op {
	u := s.Copy()
	now := v.now.UTC()
	st, msg := swarm.UpdateStateCompleted, "update completed"
	if rollingBack(s) {
		st, msg = swarm.UpdateStateRollbackCompleted, "rollback completed"
	}
	u.UpdateStatus = &swarm.UpdateStatus{State: st, StartedAt: s.UpdateStatus.StartedAt, CompletedAt: &now, Message: msg}
	// Versioned: a user's update in the meantime wins, and the next pass
	// looks again.
	return state.NewOp(state.TableServices, state.ActionUpdate, u, s.Version.Index)
}

// inSlots reports whether a group of tasks is a slot the service still has.
func inSlots(s *state.Service, tasks []*state.Task) bool {
	r := s.Spec.Mode.Replicated
	return r != nil && r.Replicas != nil && len(tasks) > 0 && tasks[0].Slot >= 1 && uint64(tasks[0].Slot) <= *r.Replicas
}
