package agent

import (
	"context"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// RemoveAll stops and removes every task this node runs or ran, and any
// task its drivers still hold for this node or a former identity of its
// data dir. It is for a node that leaves its swarm or learns it was
// removed: no manager will ever tell it to stop them, and nothing else
// would (tasks are built to outlive the daemon).
func (e *Executor) RemoveAll(ctx context.Context) {
	e.mu.Lock()
	var running []*record
	for _, r := range e.tasks {
		r.stopping = true
		if r.cancel != nil {
			r.cancel() // still starting: launch removes what it started
		}
		if r.Handle != nil {
			running = append(running, r)
		}
	}
	e.tasks = map[string]*record{}
	e.saveLocked()
	e.mu.Unlock()
	for _, r := range running {
		d := e.Drivers[r.Driver]
		if d == nil {
			continue
		}
		grace := specOf(e.NodeID, e.Hostname, r.ServiceName, r.Task).StopGracePeriod
		if err := d.Stop(ctx, *r.Handle, grace); err != nil {
			e.Log.Warn("stop task of a node leaving its swarm", "task", r.Task.ID, "err", err)
		}
		if err := d.Remove(ctx, *r.Handle); err != nil {
			e.Log.Warn("remove task of a node leaving its swarm", "task", r.Task.ID, "err", err)
		}
	}
	e.removeListed(ctx, func(driver.Listed) bool { return true })
}

// removeListed removes what the drivers list for this node and its former
// identities, where remove says it is not accounted for.
func (e *Executor) removeListed(ctx context.Context, remove func(driver.Listed) bool) {
	ids := append([]string{e.NodeID}, e.FormerNodeIDs...)
	for name, d := range e.Drivers {
		l, ok := d.(driver.Lister)
		if !ok {
			continue
		}
		for _, id := range ids {
			found, err := l.List(ctx, id)
			if err != nil {
				e.Log.Warn("list tasks left by an earlier run", "driver", name, "err", err)
				continue
			}
			for _, t := range found {
				if !remove(t) {
					continue
				}
				e.Log.Warn("removing a task this node has no record of", "driver", name, "task", t.TaskID, "former_node", id)
				if err := d.Remove(ctx, t.Handle); err != nil {
					e.Log.Warn("remove unrecorded task", "task", t.TaskID, "err", err)
				}
			}
		}
	}
}
