package orchestrator

import (
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/ids"
	"github.com/flotilla-org/flotilla/manager/state"
)

// newTask makes a task of the service's current spec: a slot for a
// replicated service, or nodeID for a global one.
func newTask(v *view, s *state.Service, slot int, nodeID string) state.Op {
	t := &state.Task{SpecVersion: s.SpecVersion}
	t.ID = ids.New()
	t.ServiceID = s.ID
	t.Slot = slot
	t.NodeID = nodeID
	t.Spec = s.Spec.TaskTemplate
	t.Ports = s.Endpoint.Ports
	t.Annotations = swarm.Annotations{Labels: s.Spec.Labels}
	t.DesiredState = swarm.TaskStateRunning
	t.Status = swarm.TaskStatus{Timestamp: v.now.UTC(), State: swarm.TaskStatePending, Message: "pending task scheduling"}
	return state.NewOp(state.TableTasks, state.ActionCreate, t, 0)
}
