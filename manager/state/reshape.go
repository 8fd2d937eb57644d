package state

import "github.com/moby/moby/api/types/swarm"

// Reshaped returns a channel closed at the next applied batch that changes
// more than how far tasks have got towards running: a service, node,
// network, secret or config; a task made, removed, placed, stopped or
// ended; any task of a service in an update or rollback.
//
// The orchestrator waits on it rather than on Changed: a pass reads the
// whole state, and the bulk of a wave of 10,000 tasks is reports of tasks
// moving towards running, which decide nothing (an update in progress
// aside, whose tasks all count). Reconciling on each of those batches
// took a quarter of the leader's CPU while the wave converged.
func (s *Store) Reshaped() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reshaped
}

func (s *Store) reshapeLocked() {
	close(s.reshaped)
	s.reshaped = make(chan struct{})
}

// reshapes tells whether a change is one Reshaped fires for; d is the
// state being written, which holds the task's service.
func reshapes(d *db, c change) bool {
	if c.table == "" {
		return false // the op changed nothing
	}
	if c.table != TableTasks || c.action != ActionPatch {
		return true
	}
	old, ok1 := c.old.(*Task)
	cur, ok2 := c.new.(*Task)
	if !ok1 || !ok2 {
		return true
	}
	switch {
	case old.NodeID != cur.NodeID, old.DesiredState != cur.DesiredState, old.Status.Err != cur.Status.Err,
		old.Status.State == swarm.TaskStatePending, TerminalState(cur.Status.State):
		return true
	}
	svc, _ := d.get(TableServices, cur.ServiceID).(*Service)
	return svc == nil || svc.UpdateStatus != nil &&
		(svc.UpdateStatus.State == swarm.UpdateStateUpdating || svc.UpdateStatus.State == swarm.UpdateStateRollbackStarted)
}
