package discovery

import (
	"net/netip"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// recordsByNetwork computes the names each network answers, as Docker's
// embedded DNS does: NAME (and each alias) → the service's VIP on the
// network, or with dnsrr its running tasks' addresses; tasks.NAME → the
// running tasks' addresses. Only tasks in the table (running on a Ready
// node) are named.
func recordsByNetwork(routes []nodeapi.Route) map[string]map[string][]netip.Addr {
	out := map[string]map[string][]netip.Addr{}
	add := func(network, name string, addrs ...netip.Addr) {
		if out[network] == nil {
			out[network] = map[string][]netip.Addr{}
		}
		out[network][name] = append(out[network][name], addrs...)
	}
	for _, r := range routes {
		tasks := map[string][]netip.Addr{}
		for _, b := range r.Backends {
			for _, a := range b.Addrs {
				tasks[a.Network] = append(tasks[a.Network], a.Addr)
			}
		}
		names := map[string][]string{} // network → the service's names on it
		for _, v := range r.VIPs {
			names[v.Network] = append(names[v.Network], r.ServiceName)
		}
		for network := range tasks {
			names[network] = append(names[network], r.ServiceName)
		}
		for _, a := range r.Aliases {
			names[a.Network] = append(names[a.Network], r.ServiceName, a.Name)
		}
		for network, ns := range names {
			var addrs []netip.Addr
			if r.Mode == swarm.ResolutionModeDNSRR {
				addrs = tasks[network]
			} else {
				for _, v := range r.VIPs {
					if v.Network == network {
						addrs = append(addrs, v.Addr)
					}
				}
			}
			seen := map[string]bool{}
			for _, n := range ns {
				if seen[n] {
					continue
				}
				seen[n] = true
				add(network, n, addrs...)
				add(network, "tasks."+n, tasks[network]...)
			}
		}
	}
	return out
}

// union merges the records of several networks (a task on several).
func union(by map[string]map[string][]netip.Addr, networks []string) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, n := range networks {
		for name, addrs := range by[n] {
			out[name] = append(out[name], addrs...)
		}
	}
	return out
}
