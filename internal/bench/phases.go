package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// taskClock notes, for each task, when the simulated nodes saw it pass
// each phase of convergence. The managers' own times come with the
// tasks: CreatedAt, and the assigned status's timestamp (the
// scheduler's clock, on this same machine).
type taskClock struct {
	mu        sync.Mutex
	placed    map[string]time.Time // the scheduler assigned it a node
	delivered map[string]time.Time // its node first received it
	via       map[string]string    // the manager that delivered it
	started   map[string]time.Time // its node reports it running (node's clock)
	reported  map[string]time.Time // a manager accepted that report
	// Assignment answers the nodes took, and the tasks in them: a node
	// gets its whole task set with each answer.
	answers, answered int
}

func newTaskClock() *taskClock {
	return &taskClock{placed: map[string]time.Time{}, delivered: map[string]time.Time{},
		started: map[string]time.Time{}, reported: map[string]time.Time{}, via: map[string]string{}}
}

// clockedCaller is a simulated node's client to the managers that
// stamps the clock with what passes through it.
type clockedCaller struct {
	next  agent.Caller
	clock *taskClock
}

func (c clockedCaller) Call(ctx context.Context, addr, path string, in, out any) error {
	err := c.next.Call(ctx, addr, path, in, out)
	if err != nil {
		return err
	}
	now := time.Now()
	c.clock.mu.Lock()
	defer c.clock.mu.Unlock()
	switch path {
	case nodeapi.PathAssignments:
		resp, ok := out.(*nodeapi.AssignmentsResponse)
		if !ok {
			return nil
		}
		c.clock.answers++
		c.clock.answered += len(resp.Tasks)
		for _, a := range resp.Tasks {
			if _, seen := c.clock.delivered[a.Task.ID]; seen {
				continue
			}
			c.clock.delivered[a.Task.ID] = now
			c.clock.via[a.Task.ID] = addr
			if a.Task.Status.State == swarm.TaskStateAssigned {
				c.clock.placed[a.Task.ID] = a.Task.Status.Timestamp
			}
		}
	case nodeapi.PathTaskStatus:
		req, ok := in.(nodeapi.TaskStatusRequest)
		if !ok {
			return nil
		}
		for _, u := range req.Updates {
			if u.Status.State != swarm.TaskStateRunning {
				continue
			}
			if _, seen := c.clock.reported[u.TaskID]; !seen {
				c.clock.started[u.TaskID] = u.Status.Timestamp
				c.clock.reported[u.TaskID] = now
			}
		}
	}
	return nil
}

// phase is one step of convergence: when tasks had passed it, counted
// from service create, over the tasks.
type phase struct {
	name, what string
	times      []time.Duration
}

// phases builds the phases from the tasks as the managers list them and
// what the nodes saw; done is when the managers' store showed every
// replica running.
func (c *taskClock) phases(t0 time.Time, tasks []swarm.Task, done time.Duration) []phase {
	c.mu.Lock()
	defer c.mu.Unlock()
	since := func(m map[string]time.Time) []time.Duration {
		out := make([]time.Duration, 0, len(m))
		for _, t := range m {
			out = append(out, t.Sub(t0))
		}
		return out
	}
	var created []time.Duration
	for _, t := range tasks {
		created = append(created, t.CreatedAt.Sub(t0))
	}
	return []phase{
		{"create", "task in the store", created},
		{"place", "assigned a node", since(c.placed)},
		{"assign", "received by its node", since(c.delivered)},
		{"start", "running on its node", since(c.started)},
		{"report", "running report accepted", since(c.reported)},
		{"store", "all running in the store", []time.Duration{done}},
	}
}

// deliveredBy splits the assign phase by the manager that delivered the
// tasks: the leader's own nodes against the followers' shows what
// replication adds.
func (c *taskClock) deliveredBy(t0 time.Time) map[string][]time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]time.Duration{}
	for id, t := range c.delivered {
		out[c.via[id]] = append(out[c.via[id]], t.Sub(t0))
	}
	return out
}

// answerCount returns the assignment answers the nodes took and the
// tasks they carried.
func (c *taskClock) answerCount() (answers, tasks int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answers, c.answered
}

// quantile returns the q-quantile of sorted ds (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// printPhases writes a table: per phase, the tasks that passed it, the
// median, p99 and last task's time from service create, and the time
// the phase added to the last task's (last minus the previous phase's
// last): where the wall-clock time goes.
func printPhases(w io.Writer, ps []phase) {
	if w == nil {
		return
	}
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }
	fmt.Fprintf(w, "phases (seconds after service create)      %6s %8s %8s %8s %8s\n", "tasks", "median", "p99", "last", "+phase")
	var prev time.Duration
	for _, p := range ps {
		s := slices.Clone(p.times)
		slices.Sort(s)
		last := quantile(s, 1)
		fmt.Fprintf(w, "  %-7s %-32s %6d %8s %8s %8s %8s\n", p.name, p.what, len(s), sec(quantile(s, 0.5)), sec(quantile(s, 0.99)), sec(last), sec(last-prev))
		prev = last
	}
}

// printDeliveredBy writes the assign phase per manager that delivered the
// tasks, naming the managers and marking the leader.
func printDeliveredBy(w io.Writer, by map[string][]time.Duration, mgrs []sandbox.Node, lead sandbox.Node) {
	if w == nil {
		return
	}
	for _, m := range mgrs {
		s := slices.Clone(by[m.SwarmAddr])
		if len(s) == 0 {
			continue
		}
		slices.Sort(s)
		role := "follower"
		if m.Name == lead.Name {
			role = "leader"
		}
		fmt.Fprintf(w, "  assign  by %-9s (%-8s)               %6d %7.2fs %7.2fs %7.2fs\n", m.Name, role, len(s),
			quantile(s, 0.5).Seconds(), quantile(s, 0.99).Seconds(), quantile(s, 1).Seconds())
	}
}
