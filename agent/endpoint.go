package agent

import (
	"context"
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// targetPorts are the ports a task exposes: to the routing mesh, and
// bound on the node for those published in host mode (at publishHost).
func targetPorts(ports []swarm.PortConfig, publishHost string) []driver.Port {
	var out []driver.Port
	for _, p := range ports {
		dp := driver.Port{Target: p.TargetPort, Proto: string(p.Protocol)}
		if dp.Proto == "" {
			dp.Proto = "tcp"
		}
		if p.PublishMode == swarm.PortConfigPublishModeHost {
			dp.Host, dp.HostIP, dp.Published = true, publishHost, p.PublishedPort
		}
		if !slices.Contains(out, dp) {
			out = append(out, dp)
		}
	}
	return out
}

// hostPortStatus is what a running task reports of its host-mode ports,
// as Docker's tasks do in Status.PortStatus.
func hostPortStatus(ports []swarm.PortConfig) swarm.PortStatus {
	var out []swarm.PortConfig
	for _, p := range ports {
		if p.PublishMode == swarm.PortConfigPublishModeHost {
			out = append(out, p)
		}
	}
	return swarm.PortStatus{Ports: out}
}

// Endpoint is where a task of this node listens on a target port, for the
// routing mesh. Only a running task that is not being stopped has one.
func (e *Executor) Endpoint(ctx context.Context, taskID string, p driver.Port) (string, error) {
	e.mu.Lock()
	r := e.tasks[taskID]
	if r == nil || r.Handle == nil || r.stopping || r.Status.State != swarm.TaskStateRunning {
		e.mu.Unlock()
		return "", errdefs.NotFound("task %s is not running on this node", taskID)
	}
	if a := r.endpoints[p.String()]; a != "" {
		e.mu.Unlock()
		return a, nil
	}
	name, h := r.Driver, *r.Handle
	e.mu.Unlock()
	ep, ok := e.Drivers[name].(driver.Endpointer)
	if !ok {
		return "", errdefs.Invalid("task %s: driver %s cannot expose ports to the routing mesh", taskID, name)
	}
	a, err := ep.Endpoint(ctx, h, p)
	if err != nil {
		return "", err
	}
	// A running task's address does not change (its container is never
	// restarted in place), and asking the engine on every connection
	// would cost a round trip each.
	e.mu.Lock()
	if r.Handle != nil && r.Handle.ID == h.ID {
		if r.endpoints == nil {
			r.endpoints = map[string]string{}
		}
		r.endpoints[p.String()] = a
	}
	e.mu.Unlock()
	return a, nil
}
