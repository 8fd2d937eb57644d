package docker

import (
	"net/netip"
	"strconv"

	"github.com/moby/moby/api/types/network"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// hostBindings binds the ports published in host mode on the node, as
// swarm does for host mode (HostIP "" binds every address; Published 0
// lets the engine choose). Ingress ports need no binding: the routing
// mesh reaches the container on its bridge address.
func hostBindings(ports []driver.Port) (network.PortSet, network.PortMap, error) {
	exposed, bindings := network.PortSet{}, network.PortMap{}
	for _, p := range ports {
		if !p.Host {
			continue
		}
		cp, ok := network.PortFrom(uint16(p.Target), network.IPProtocol(p.Proto))
		if !ok {
			return nil, nil, errdefs.Invalid("invalid port %s", p)
		}
		b := network.PortBinding{}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, nil, errdefs.Invalid("invalid publish address %q: %v", p.HostIP, err)
			}
			b.HostIP = ip
		}
		if p.Published != 0 {
			b.HostPort = strconv.Itoa(int(p.Published))
		}
		exposed[cp] = struct{}{}
		bindings[cp] = append(bindings[cp], b)
	}
	if len(exposed) == 0 {
		return nil, nil, nil
	}
	return exposed, bindings, nil
}
