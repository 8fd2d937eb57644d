package mesh

import (
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// Connections to swarm networks' addresses reach the mesh through the
// node's nat rules (agent/netrules) with the address the client meant: a
// service's virtual address is load-balanced over its running tasks on
// whatever port the client chose, as IPVS does in Docker; a task's own
// address (dnsrr, tasks.NAME) goes to that task.

// addrRoute is what one address on a swarm network leads to.
type addrRoute struct {
	network string // the network's ID
	route   *route // its backends: the service's tasks, or the one task
}

// addrTable maps every VIP and task address of the table to its backends.
func addrTable(routes []nodeapi.Route) map[netip.Addr]*addrRoute {
	out := map[netip.Addr]*addrRoute{}
	for _, r := range routes {
		if len(r.VIPs) > 0 {
			rt := &route{service: r.ServiceName, proxy: r.ProxyProtocol, backends: r.Backends}
			rt.next.Store(rand.Uint64())
			for _, v := range r.VIPs {
				out[v.Addr] = &addrRoute{network: v.Network, route: rt}
			}
		}
		for _, b := range r.Backends {
			for _, a := range b.Addrs {
				out[a.Addr] = &addrRoute{network: a.Network, route: &route{service: r.ServiceName,
					proxy: r.ProxyProtocol, backends: []nodeapi.Backend{b}}}
			}
		}
	}
	return out
}

// ServeCaptured proxies a connection the nat rules redirected to the mesh
// to the service or task at its original destination, if allowed says
// the client may reach that network. Anything else is closed: an address
// no service or running task holds (a direct connection to the capture
// port shows the node's own address), or another network's.
func (m *Mesh) ServeCaptured(c net.Conn, dst netip.AddrPort, allowed func(client netip.Addr, network string) bool) {
	m.mu.Lock()
	a := m.addrs[dst.Addr().Unmap()]
	m.mu.Unlock()
	var client netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = ta.AddrPort().Addr().Unmap()
	}
	if a == nil || (allowed != nil && !allowed(client, a.network)) {
		m.cfg.Log.Debug("routing mesh: captured connection refused", "client", c.RemoteAddr(), "dst", dst, "known", a != nil)
		c.Close()
		return
	}
	m.handle(a.route, driver.Port{Target: uint32(dst.Port()), Proto: "tcp"}, dst.String(), c)
}
