package agent

import (
	"context"
	"net/netip"

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
	// TaskStarted tells the addresses of a started task that has its own.
	TaskStarted(taskID string, addrs []netip.Addr, nets []driver.NetworkAttachment)
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
	e.started(e.ctx, d, *r.Handle, spec)
}

// started tells the attacher where a task with addresses of its own (a
// container) is, so its DNS queries and connections are served for all
// its networks.
func (e *Executor) started(ctx context.Context, d driver.Driver, h driver.Handle, spec driver.Spec) {
	a, ok := d.(driver.Addresser)
	if !ok || e.Networks == nil || len(spec.Networks) < 2 {
		return // one network: its bridge says which
	}
	addrs, err := a.Addresses(ctx, h)
	if err != nil {
		e.Log.Warn("task on several networks: its addresses are unknown, so it resolves only its first network's names", "task", spec.TaskID, "err", err)
		return
	}
	e.Networks.TaskStarted(spec.TaskID, addrs, spec.Networks)
}
