package agent

import "github.com/moby/moby/api/types/swarm"

// TaskCount is how many of the node's tasks are in one state on one
// driver.
type TaskCount struct {
	State  swarm.TaskState
	Driver string
	N      int
}

// TaskCounts counts the tasks the executor holds by state and driver, for
// the node's metrics. It is nil before Start.
func (e *Executor) TaskCounts() []TaskCount {
	e.mu.Lock()
	defer e.mu.Unlock()
	type key struct {
		state  swarm.TaskState
		driver string
	}
	counts := map[key]int{}
	for _, r := range e.tasks {
		counts[key{r.Status.State, r.Driver}]++
	}
	out := make([]TaskCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, TaskCount{State: k.state, Driver: k.driver, N: n})
	}
	return out
}
