package manager

import (
	"net"
	"net/netip"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

// Docker's default address pool for swarm networks: /24s out of
// 10.0.0.0/8, the first of which is the ingress network's.
var (
	defaultPool       = netip.MustParsePrefix("10.0.0.0/8")
	defaultSubnetBits = 24
	ingressSubnet     = netip.MustParsePrefix("10.0.0.0/24")
)

// usedSubnets are the subnets the cluster's networks hold.
func usedSubnets(nets []*state.Network) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range nets {
		if n.IPAMOptions == nil {
			continue
		}
		for _, c := range n.IPAMOptions.Configs {
			if c.Subnet.IsValid() {
				out = append(out, c.Subnet)
			}
		}
	}
	return out
}

// overlapping returns the first of used that shares an address with p.
func overlapping(p netip.Prefix, used []netip.Prefix) (netip.Prefix, bool) {
	for _, u := range used {
		if u.Overlaps(p) {
			return u, true
		}
	}
	return netip.Prefix{}, false
}

// nextSubnet returns the first default-size subnet of the default pool
// that no network holds, or an error when the pool is exhausted.
func nextSubnet(used []netip.Prefix) (netip.Prefix, error) {
	step := uint32(1) << (32 - defaultSubnetBits)
	base := defaultPool.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	count := uint32(1) << (defaultSubnetBits - defaultPool.Bits())
	for i := range count {
		v := start + i*step
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), defaultSubnetBits)
		if _, ok := overlapping(p, used); !ok {
			return p, nil
		}
	}
	return netip.Prefix{}, errdefs.Unavailable("no free /%d subnet is left in the default address pool %s; give the network a --subnet outside it, or remove unused networks", defaultSubnetBits, defaultPool)
}

// allocateIPAM checks the subnets a spec asks for and returns what the
// network holds: those subnets with their gateways (the first address
// unless given), or a free subnet of the default pool when none is asked.
// used are the subnets of the other networks; none may overlap. avoid are
// the nodes' own addresses: a subnet holding one would take that node's
// traffic into the mesh (nodes capture the subnets of swarm networks), so
// the default pool skips them and a subnet asked for may not hold one.
func allocateIPAM(spec *swarm.NetworkSpec, used, avoid []netip.Prefix) (*swarm.IPAMOptions, error) {
	out := &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"}}
	if o := spec.IPAMOptions; o != nil {
		switch o.Driver.Name {
		case "", "default":
		default:
			return nil, errdefs.Invalid("IPAM driver %q is not supported by flotilla: leave it out to use the default one", o.Driver.Name)
		}
		out.Driver.Options = o.Driver.Options
	}
	var asked []swarm.IPAMConfig
	if spec.IPAMOptions != nil {
		asked = spec.IPAMOptions.Configs
	}
	if len(asked) == 0 {
		p, err := nextSubnet(append(append([]netip.Prefix(nil), used...), avoid...))
		if err != nil {
			return nil, err
		}
		out.Configs = []swarm.IPAMConfig{{Subnet: p, Gateway: p.Addr().Next()}}
		return out, nil
	}
	taken := append([]netip.Prefix(nil), used...)
	for _, c := range asked {
		cfg, err := checkIPAMConfig(c)
		if err != nil {
			return nil, err
		}
		if a, ok := overlapping(cfg.Subnet, avoid); ok {
			return nil, errdefs.Invalid("invalid pool request: subnet %s holds %s, the address of a node of this swarm: that node would send its own traffic there into the routing mesh; choose a subnet outside the hosts' networks", cfg.Subnet, a.Addr())
		}
		if o, ok := overlapping(cfg.Subnet, taken); ok {
			return nil, errdefs.Conflict("invalid pool request: subnet %s overlaps with subnet %s of another network; choose a subnet that no network uses (docker network inspect shows theirs)", cfg.Subnet, o)
		}
		taken = append(taken, cfg.Subnet)
		out.Configs = append(out.Configs, cfg)
	}
	return out, nil
}

// checkIPAMConfig validates one asked-for subnet and fills its gateway.
func checkIPAMConfig(c swarm.IPAMConfig) (swarm.IPAMConfig, error) {
	s := c.Subnet
	switch {
	case !s.IsValid():
		return c, errdefs.Invalid("invalid network config: an IPAM config needs a subnet (--subnet, such as 10.1.0.0/24)")
	case !s.Addr().Is4():
		return c, errdefs.Invalid("invalid subnet %s: IPv6 subnets are not supported yet by flotilla; use an IPv4 subnet", s)
	case s.Masked() != s:
		return c, errdefs.Invalid("invalid subnet %s: it has host bits set; use %s", s, s.Masked())
	case s.Bits() > 30:
		return c, errdefs.Invalid("invalid subnet %s: it is too small for tasks; use a prefix of /30 or shorter", s)
	}
	if c.Range.IsValid() {
		if !c.Range.Addr().Is4() || c.Range.Bits() < s.Bits() || !s.Contains(c.Range.Addr()) {
			return c, errdefs.Invalid("invalid ip range %s: it must lie within subnet %s", c.Range, s)
		}
	}
	if !c.Gateway.IsValid() {
		c.Gateway = s.Addr().Next()
	} else if !s.Contains(c.Gateway) || c.Gateway == s.Addr() {
		return c, errdefs.Invalid("invalid gateway %s: it must be a host address within subnet %s", c.Gateway, s)
	}
	return c, nil
}

// nodeAddrs are the nodes' addresses (cluster and reported), as /32s.
func nodeAddrs(v *state.View) []netip.Prefix {
	var out []netip.Prefix
	add := func(s string) {
		if h, _, err := net.SplitHostPort(s); err == nil {
			s = h
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() && !a.IsLoopback() && !a.IsUnspecified() {
			out = append(out, netip.PrefixFrom(a, 32))
		}
	}
	for _, n := range v.Nodes() {
		add(n.Addr)
		add(n.Status.Addr)
	}
	return out
}
