package manager

import (
	"fmt"
	"slices"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/dispatcher"
	"github.com/flotilla-org/flotilla/manager/ipam"
	"github.com/flotilla-org/flotilla/manager/state"
)

// Docker's range for published ports the user leaves to the cluster.
const (
	DynamicPortStart = 30000
	DynamicPortEnd   = 32767
)

// portKey is a published port: one per protocol in the cluster.
type portKey struct {
	port  uint32
	proto network.IPProtocol
}

// validatePorts checks a spec's published ports and fills Docker's
// defaults (protocol tcp, mode ingress, endpoint mode vip).
func validatePorts(spec *swarm.ServiceSpec) error {
	switch v := spec.Labels[dispatcher.LabelProxyProtocol]; v {
	case "", "v1", "v2":
	default:
		// Accepted, every connection to the service would fail.
		return errdefs.Invalid("invalid label %s=%q: use v1 or v2 (the PROXY protocol version), or leave it out", dispatcher.LabelProxyProtocol, v)
	}
	es := spec.EndpointSpec
	if es == nil {
		return nil
	}
	switch es.Mode {
	case "":
		es.Mode = swarm.ResolutionModeVIP
	case swarm.ResolutionModeVIP, swarm.ResolutionModeDNSRR:
	default:
		return errdefs.Invalid("invalid endpoint mode %q: use vip or dnsrr", es.Mode)
	}
	published := map[portKey]bool{}
	for i := range es.Ports {
		p := &es.Ports[i]
		if p.Protocol == "" {
			p.Protocol = network.TCP
		}
		if p.PublishMode == "" {
			p.PublishMode = swarm.PortConfigPublishModeIngress
		}
		switch p.Protocol {
		case network.TCP, network.UDP, network.SCTP:
		default:
			return errdefs.Invalid("invalid protocol %q for port %d: use tcp, udp or sctp", p.Protocol, p.TargetPort)
		}
		switch p.PublishMode {
		case swarm.PortConfigPublishModeIngress, swarm.PortConfigPublishModeHost:
		default:
			return errdefs.Invalid("invalid publish mode %q for port %d: use ingress or host", p.PublishMode, p.TargetPort)
		}
		if p.TargetPort == 0 || p.TargetPort > 65535 {
			return errdefs.Invalid("invalid target port %d: use a port from 1 to 65535", p.TargetPort)
		}
		if p.PublishedPort > 65535 {
			return errdefs.Invalid("invalid published port %d: use a port from 1 to 65535, or leave it out to have one assigned", p.PublishedPort)
		}
		if p.PublishedPort != 0 {
			k := portKey{p.PublishedPort, p.Protocol}
			if published[k] {
				return errdefs.Invalid("published port %d/%s is given twice in the service spec", p.PublishedPort, p.Protocol)
			}
			published[k] = true
		}
	}
	if es.Mode == swarm.ResolutionModeDNSRR && anyPort(spec, func(p swarm.PortConfig) bool { return p.PublishMode == swarm.PortConfigPublishModeIngress }) {
		// As Docker: round-robin DNS has no virtual IP for the mesh to use.
		return errdefs.Invalid("port published with ingress mode can't be used with dnsrr mode")
	}
	return nil
}

// endpointFor computes a service's Endpoint: its ingress ports get a
// published port (kept from prev when the user leaves it out, so an
// update does not move a port clients use), and a published port already
// used by another service is refused as Docker does; its virtual IPs are
// virtualIPs'. v is the state the service is checked against; id is the
// service's own ID ("" when creating).
func endpointFor(v *state.View, id string, spec swarm.ServiceSpec, prev *swarm.Endpoint) (swarm.Endpoint, error) {
	ep, err := portsFor(v.Services(), id, spec, prev)
	if err != nil {
		return ep, err
	}
	ep.VirtualIPs, err = virtualIPs(v, spec, prev)
	return ep, err
}

// virtualIPs are a service's virtual IPs, as Docker gives them in
// endpoint mode vip (the default): one on each network of the service,
// and one on the ingress network when it publishes a port through the
// routing mesh, each with its subnet's prefix length. An address prev
// holds on a network the service stays on is kept; the others are
// allocated from the networks' free addresses. Targets are network IDs
// (attachNetworks). A service in mode dnsrr has none.
func virtualIPs(v *state.View, spec swarm.ServiceSpec, prev *swarm.Endpoint) ([]swarm.EndpointVirtualIP, error) {
	if spec.EndpointSpec != nil && spec.EndpointSpec.Mode == swarm.ResolutionModeDNSRR {
		return nil, nil
	}
	var nets []string
	if in := ingressNetwork(v); in != nil && publishesIngress(spec) {
		nets = append(nets, in.ID)
	}
	for _, a := range spec.TaskTemplate.Networks {
		nets = append(nets, a.Target)
	}
	var out []swarm.EndpointVirtualIP
	var alloc *ipam.Allocator
	for _, id := range nets {
		if prev != nil {
			if i := slices.IndexFunc(prev.VirtualIPs, func(vip swarm.EndpointVirtualIP) bool { return vip.NetworkID == id }); i >= 0 {
				out = append(out, prev.VirtualIPs[i])
				continue
			}
		}
		if alloc == nil {
			alloc = ipam.FromView(v)
		}
		addr, err := alloc.Allocate(id)
		if err != nil {
			return nil, fmt.Errorf("cannot give the service a virtual IP: %w", err)
		}
		out = append(out, swarm.EndpointVirtualIP{NetworkID: id, Addr: addr})
	}
	return out, nil
}

// portsFor computes the published ports of a service's Endpoint (see
// endpointFor). services is every service.
func portsFor(services []*state.Service, id string, spec swarm.ServiceSpec, prev *swarm.Endpoint) (swarm.Endpoint, error) {
	ep := swarm.Endpoint{}
	if spec.EndpointSpec == nil {
		return ep, nil
	}
	ep.Spec = *spec.EndpointSpec
	used := map[portKey]*state.Service{}
	for _, s := range services {
		if s.ID == id {
			continue
		}
		for _, p := range s.Endpoint.Ports {
			if p.PublishMode == swarm.PortConfigPublishModeIngress {
				used[portKey{p.PublishedPort, p.Protocol}] = s
			}
		}
	}
	mine := map[portKey]bool{}
	for _, p := range spec.EndpointSpec.Ports {
		if p.PublishedPort != 0 {
			mine[portKey{p.PublishedPort, p.Protocol}] = true
		}
	}
	for _, p := range spec.EndpointSpec.Ports {
		if p.PublishMode == swarm.PortConfigPublishModeIngress {
			if p.PublishedPort == 0 {
				p.PublishedPort = keptPort(prev, p, mine)
			}
			if p.PublishedPort == 0 {
				free := uint32(0)
				for port := uint32(DynamicPortStart); port <= DynamicPortEnd && free == 0; port++ {
					k := portKey{port, p.Protocol}
					if used[k] == nil && !mine[k] {
						free = port
					}
				}
				if free == 0 {
					return ep, errdefs.Unavailable("no published port is free in %d-%d for target port %d: give one with published=PORT", DynamicPortStart, DynamicPortEnd, p.TargetPort)
				}
				p.PublishedPort = free
			}
			k := portKey{p.PublishedPort, p.Protocol}
			if s := used[k]; s != nil {
				return ep, errdefs.Invalid("port '%d' is already in use by service '%s' (%s) as an ingress port; publish another port or remove it from that service first", p.PublishedPort, s.Spec.Name, s.ID)
			}
			mine[k] = true
		}
		ep.Ports = append(ep.Ports, p)
	}
	return ep, nil
}

// keptPort is the published port prev assigned to the same target port
// and protocol, if the new spec does not give it to another port.
func keptPort(prev *swarm.Endpoint, p swarm.PortConfig, taken map[portKey]bool) uint32 {
	if prev == nil {
		return 0
	}
	for _, old := range prev.Ports {
		if old.TargetPort == p.TargetPort && old.Protocol == p.Protocol && old.PublishMode == p.PublishMode &&
			!slices.ContainsFunc(prev.Spec.Ports, func(s swarm.PortConfig) bool {
				return s.PublishedPort == old.PublishedPort && s.Protocol == old.Protocol
			}) &&
			!taken[portKey{old.PublishedPort, old.Protocol}] {
			return old.PublishedPort
		}
	}
	return 0
}

// targetPorts is what a task must expose: the target ports of its
// service's ports, as "80/tcp", and the ports it binds on its node in host
// mode, as "host:8080:80/tcp", in order. A change in it restarts tasks; a
// change of ingress published ports only moves the mesh's listeners.
func targetPorts(ep *swarm.EndpointSpec) []string {
	if ep == nil {
		return nil
	}
	var out []string
	for _, p := range ep.Ports {
		if p.PublishMode == swarm.PortConfigPublishModeHost {
			out = append(out, fmt.Sprintf("host:%d:%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
			continue
		}
		out = append(out, fmt.Sprintf("%d/%s", p.TargetPort, p.Protocol))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
