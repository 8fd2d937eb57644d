package orchestrator

import (
	"net/netip"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/ids"
	"github.com/flotilla-org/flotilla/manager/ipam"
	"github.com/flotilla-org/flotilla/manager/state"
)

// newTask makes a task of the service's current spec: a slot for a
// replicated service, or nodeID for a global one. A task of a service on
// networks gets an address on each (the state keeps the network's ID
// only). When a network has no free address no task is made: the error
// says why, and a later pass tries again.
//
// The op it returns is not encoded yet: the pass places the tasks it made
// before writing them (placeMade), so a task is created already assigned
// to its node, in one Raft write instead of two.
func newTask(v *view, s *state.Service, slot int, nodeID string) (state.Op, error) {
	attachments, err := taskAddresses(v, s)
	if err != nil {
		return state.Op{}, err
	}
	t := &state.Task{SpecVersion: s.SpecVersion}
	t.ID = ids.New()
	t.ServiceID = s.ID
	t.Slot = slot
	t.NodeID = nodeID
	t.Spec = s.Spec.TaskTemplate
	t.Ports = s.Endpoint.Ports
	t.NetworksAttachments = attachments
	t.Annotations = swarm.Annotations{Labels: s.Spec.Labels}
	t.DesiredState = swarm.TaskStateRunning
	t.Status = swarm.TaskStatus{Timestamp: v.now.UTC(), State: swarm.TaskStatePending, Message: "pending task scheduling"}
	if v.made == nil {
		v.made = map[string]*state.Task{}
	}
	v.made[t.ID] = t
	return state.Op{Table: state.TableTasks, Action: state.ActionCreate, ID: t.ID}, nil
}

// taskAddresses allocates a new task's address on each of its service's
// networks, from the pass's allocator: two tasks of one pass never get
// the same address.
func taskAddresses(v *view, s *state.Service) ([]swarm.NetworkAttachment, error) {
	nets := s.Spec.TaskTemplate.Networks
	if len(nets) == 0 {
		return nil, nil
	}
	alloc := v.allocator()
	out := make([]swarm.NetworkAttachment, 0, len(nets))
	for _, a := range nets {
		addr, err := alloc.Allocate(a.Target)
		if err != nil {
			return nil, err
		}
		out = append(out, swarm.NetworkAttachment{Network: swarm.Network{ID: a.Target}, Addresses: []netip.Prefix{addr}})
	}
	return out, nil
}

// allocator is the pass's address allocator, built on first use from the
// pass's view: every service's virtual IPs and every live task's
// addresses are taken.
func (v *view) allocator() *ipam.Allocator {
	if v.addrs == nil {
		v.addrs = ipam.New(v.networks)
		for _, s := range v.services {
			v.addrs.UseService(s)
		}
		for _, tasks := range v.tasks {
			for _, t := range tasks {
				v.addrs.UseTask(t)
			}
		}
	}
	return v.addrs
}
