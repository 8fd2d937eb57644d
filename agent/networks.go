package agent

import (
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// NetworkAttacher gives tasks their place on swarm networks
// (agent/discovery): network names, and for tasks without a network
// namespace of their own, a DNS server each.
type NetworkAttacher interface {
	NetworkName(id string) string
	// AttachTask starts the task's DNS server and returns its address.
	AttachTask(taskID string, nets []driver.NetworkAttachment) (string, error)
	DetachTask(taskID string)
}

// networksOf are a task's swarm networks and its address on each, as the
// managers allocated them (the ingress network is the mesh's, not the
// task's).
func (e *Executor) networksOf(t swarm.Task) []driver.NetworkAttachment {
	var out []driver.NetworkAttachment
	for _, a := range t.NetworksAttachments {
		if a.Network.Spec.Ingress || len(a.Addresses) == 0 {
			continue
		}
		n := driver.NetworkAttachment{ID: a.Network.ID, Name: a.Network.Spec.Name, Addr: a.Addresses[0]}
		if n.Name == "" && e.Networks != nil {
			n.Name = e.Networks.NetworkName(n.ID)
		}
		out = append(out, n)
	}
	return out
}

// attach prepares a task's networks before it starts: a task sharing the
// node's network gets a DNS server of its own.
func (e *Executor) attach(d driver.Driver, spec *driver.Spec) error {
	if len(spec.Networks) == 0 || e.Networks == nil {
		return nil
	}
	if _, ok := d.(driver.NodeNetworked); !ok {
		// The driver bridges its tasks (docker): the node's DNS server
		// listens on the bridge's gateway.
		spec.DNS = driver.DNSOnBridge
		return nil
	}
	addr, err := e.Networks.AttachTask(spec.TaskID, spec.Networks)
	if err != nil {
		return err
	}
	spec.DNS = addr
	return nil
}

// reattach starts again the DNS server of a task found running after the
// agent restarted (its address is the same: it comes from the task).
func (e *Executor) reattach(r *record, d driver.Driver) {
	spec := driver.Spec{TaskID: r.Task.ID, Networks: e.networksOf(r.Task)}
	if err := e.attach(d, &spec); err != nil {
		e.Log.Warn("task re-attached without its DNS server", "task", r.Task.ID, "err", err)
	}
}
