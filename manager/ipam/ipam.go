// Package ipam hands out addresses on swarm networks: a service's
// virtual IPs and its tasks' addresses, from each network's subnet. An
// Allocator is built from one consistent view of the state (what every
// service and every live task holds) and used for one decision or one
// orchestrator pass, so two addresses it gives are never the same.
package ipam

import (
	"net/netip"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

// Allocator gives free addresses of the networks it knows.
type Allocator struct {
	nets map[string]*state.Network
	used map[netip.Addr]bool // networks' subnets never overlap
	next map[string]netip.Addr
}

// New returns an allocator for nets where no address is used yet.
func New(nets []*state.Network) *Allocator {
	a := &Allocator{nets: map[string]*state.Network{}, used: map[netip.Addr]bool{}, next: map[string]netip.Addr{}}
	for _, n := range nets {
		a.nets[n.ID] = n
	}
	return a
}

// FromView returns an allocator where every service's virtual IPs and
// every live task's addresses are used.
func FromView(v *state.View) *Allocator {
	a := New(v.Networks())
	for _, s := range v.Services() {
		a.UseService(s)
	}
	for _, t := range v.Tasks() {
		a.UseTask(t)
	}
	return a
}

// UseService marks a service's virtual IPs used.
func (a *Allocator) UseService(s *state.Service) {
	for _, vip := range s.Endpoint.VirtualIPs {
		a.use(vip.Addr)
	}
}

// UseTask marks a task's addresses used, unless the task has ended: an
// ended task's address is free again.
func (a *Allocator) UseTask(t *state.Task) {
	if state.TerminalState(t.Status.State) {
		return
	}
	for _, at := range t.NetworksAttachments {
		for _, p := range at.Addresses {
			a.use(p)
		}
	}
}

func (a *Allocator) use(p netip.Prefix) {
	if p.IsValid() {
		a.used[p.Addr()] = true
	}
}

// Allocate returns a free address of the network, with its subnet's
// prefix length ("10.0.1.2/24", as Docker shows addresses), and marks it
// used. The subnet's network and broadcast addresses, its first host
// address and the gateway are never given (Docker keeps the first one
// for the gateway). Addresses are given lowest first, within the
// network's IP range when it has one.
func (a *Allocator) Allocate(networkID string) (netip.Prefix, error) {
	n := a.nets[networkID]
	if n == nil {
		return netip.Prefix{}, errdefs.NotFound("network %s not found", networkID)
	}
	cfg, ok := subnetOf(n)
	if !ok {
		return netip.Prefix{}, errdefs.Unavailable("network %s (%s) has no IPv4 subnet to take addresses from", n.Spec.Name, n.ID)
	}
	subnet := cfg.Subnet
	first, last := subnet.Addr(), lastAddr(subnet)
	if r := cfg.Range; r.IsValid() && r.Addr().Is4() {
		first, last = r.Masked().Addr(), lastAddr(r.Masked())
	}
	start := first
	if nx, ok := a.next[networkID]; ok && start.Less(nx) {
		start = nx
	}
	for ip := start; ip.IsValid() && !last.Less(ip); ip = ip.Next() {
		if ip == subnet.Addr() || ip == subnet.Addr().Next() || ip == lastAddr(subnet) || ip == cfg.Gateway || a.used[ip] {
			continue
		}
		a.used[ip] = true
		a.next[networkID] = ip.Next() // nothing is freed during an allocator's life
		return netip.PrefixFrom(ip, subnet.Bits()), nil
	}
	a.next[networkID] = last.Next()
	return netip.Prefix{}, exhausted(n)
}

// exhausted is the error for a network without a free address.
func exhausted(n *state.Network) error {
	cfg, _ := subnetOf(n)
	return errdefs.Unavailable("no free address on network %s (%s): its addresses are taken by services' virtual IPs and tasks; scale services on it down, remove some from it, or use a network with a larger subnet",
		n.Spec.Name, cfg.Subnet)
}

// subnetOf is the network's first IPv4 subnet.
func subnetOf(n *state.Network) (swarm.IPAMConfig, bool) {
	if n.IPAMOptions == nil {
		return swarm.IPAMConfig{}, false
	}
	for _, c := range n.IPAMOptions.Configs {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is4() {
			return c, true
		}
	}
	return swarm.IPAMConfig{}, false
}

// lastAddr is the highest address of an IPv4 prefix (its broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
