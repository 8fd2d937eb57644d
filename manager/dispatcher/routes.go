package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/state"
)

// LabelProxyProtocol is the service label that makes the routing mesh
// send a PROXY protocol header ("v1" or "v2") to the service's tasks.
const LabelProxyProtocol = "com.flotilla.proxy-protocol"

// Routes answers a node's long-poll with the routing mesh's table once it
// differs from what the node has (known fingerprint). Every node asks:
// every node accepts connections on every published ingress port.
func (d *Dispatcher) Routes(ctx context.Context, known string) nodeapi.RoutesResponse {
	return waitChange(ctx, known, d.store.Changed, func() (nodeapi.RoutesResponse, string) {
		r := d.routes()
		return r, r.Fingerprint
	})
}

// routes is Routes of the current state, computed once per state change
// however many nodes ask (thousands of nodes wake on every change).
func (d *Dispatcher) routes() nodeapi.RoutesResponse {
	v := d.store.View()
	d.routesMu.Lock()
	defer d.routesMu.Unlock()
	if d.routesAt != v.Index() || d.routesCache.Fingerprint == "" {
		d.routesCache, d.routesAt = Routes(v), v.Index()
	}
	return d.routesCache
}

// Routes builds the table from one consistent state. A task is a backend
// only while it runs, is meant to run, and its node is Ready: a task whose
// node goes Down, that exits or fails its health check, or that is being
// shut down leaves the table at once (moby/moby#35548, #26060, #23970).
// A service is in the table when it publishes an ingress port or is on a
// swarm network (its names and addresses are served on every node).
func Routes(v *state.View) nodeapi.RoutesResponse {
	var resp nodeapi.RoutesResponse
	for _, n := range v.Networks() {
		if n.Spec.Ingress || n.IPAMOptions == nil || len(n.IPAMOptions.Configs) == 0 {
			continue
		}
		resp.Networks = append(resp.Networks, nodeapi.RouteNetwork{ID: n.ID, Name: n.Spec.Name,
			Subnet: n.IPAMOptions.Configs[0].Subnet, Internal: n.Spec.Internal})
	}
	sort.Slice(resp.Networks, func(i, j int) bool { return resp.Networks[i].ID < resp.Networks[j].ID })
	var nodes map[string]*state.Node
	services := v.Services()
	sort.Slice(services, func(i, j int) bool { return services[i].ID < services[j].ID })
	for _, s := range services {
		var ports []swarm.PortConfig
		for _, p := range s.Endpoint.Ports {
			if p.PublishMode == swarm.PortConfigPublishModeIngress {
				ports = append(ports, p)
			}
		}
		nets := s.Spec.TaskTemplate.Networks
		if len(ports) == 0 && len(nets) == 0 {
			continue
		}
		if nodes == nil {
			nodes = map[string]*state.Node{}
			for _, n := range v.Nodes() {
				nodes[n.ID] = n
			}
		}
		r := nodeapi.Route{ServiceID: s.ID, ServiceName: s.Spec.Name, Ports: ports, ProxyProtocol: s.Spec.Labels[LabelProxyProtocol],
			VIPs: vips(s.Endpoint.VirtualIPs)}
		if s.Spec.EndpointSpec != nil {
			r.Mode = s.Spec.EndpointSpec.Mode
		}
		for _, a := range nets {
			for _, name := range a.Aliases {
				r.Aliases = append(r.Aliases, nodeapi.NetAlias{Network: a.Target, Name: name})
			}
		}
		for _, t := range v.TasksByService(s.ID) {
			n := nodes[t.NodeID]
			if t.DesiredState != swarm.TaskStateRunning || t.Status.State != swarm.TaskStateRunning ||
				n == nil || n.Status.State != swarm.NodeStateReady || n.Addr == "" {
				continue
			}
			r.Backends = append(r.Backends, nodeapi.Backend{TaskID: t.ID, NodeID: n.ID, NodeAddr: n.Addr, Addrs: taskAddrs(t)})
		}
		sort.Slice(r.Backends, func(i, j int) bool { return r.Backends[i].TaskID < r.Backends[j].TaskID })
		resp.Services = append(resp.Services, r)
	}
	b, _ := json.Marshal(resp)
	sum := sha256.Sum256(b)
	resp.Fingerprint = hex.EncodeToString(sum[:12])
	resp.Index = v.Index() // after the fingerprint, which covers the table only
	return resp
}

// vips are a service's virtual addresses without their prefix length.
func vips(in []swarm.EndpointVirtualIP) []nodeapi.NetAddr {
	var out []nodeapi.NetAddr
	for _, v := range in {
		if v.Addr.IsValid() {
			out = append(out, nodeapi.NetAddr{Network: v.NetworkID, Addr: v.Addr.Addr()})
		}
	}
	return out
}

// taskAddrs are a task's addresses on its networks.
func taskAddrs(t *state.Task) []nodeapi.NetAddr {
	var out []nodeapi.NetAddr
	for _, a := range t.NetworksAttachments {
		for _, s := range a.Addresses {
			if s.IsValid() {
				out = append(out, nodeapi.NetAddr{Network: a.Network.ID, Addr: s.Addr()})
			}
		}
	}
	return out
}
