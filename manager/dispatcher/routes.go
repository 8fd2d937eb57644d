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
func Routes(v *state.View) nodeapi.RoutesResponse {
	var resp nodeapi.RoutesResponse
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
		if len(ports) == 0 {
			continue
		}
		if nodes == nil {
			nodes = map[string]*state.Node{}
			for _, n := range v.Nodes() {
				nodes[n.ID] = n
			}
		}
		r := nodeapi.Route{ServiceID: s.ID, ServiceName: s.Spec.Name, Ports: ports, ProxyProtocol: s.Spec.Labels[LabelProxyProtocol]}
		for _, t := range v.TasksByService(s.ID) {
			n := nodes[t.NodeID]
			if t.DesiredState != swarm.TaskStateRunning || t.Status.State != swarm.TaskStateRunning ||
				n == nil || n.Status.State != swarm.NodeStateReady || n.Addr == "" {
				continue
			}
			r.Backends = append(r.Backends, nodeapi.Backend{TaskID: t.ID, NodeID: n.ID, NodeAddr: n.Addr})
		}
		sort.Slice(r.Backends, func(i, j int) bool { return r.Backends[i].TaskID < r.Backends[j].TaskID })
		resp.Services = append(resp.Services, r)
	}
	b, _ := json.Marshal(resp.Services)
	sum := sha256.Sum256(b)
	resp.Fingerprint = hex.EncodeToString(sum[:12])
	return resp
}
