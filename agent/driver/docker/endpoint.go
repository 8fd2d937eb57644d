package docker

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Endpoint says where the routing mesh reaches a container on a target
// port: its address on its bridge network (reachable from the node, so no
// host port is opened; for a task on swarm networks, its first network's
// bridge), or the node's loopback for a container on the host's network.
// It asks the engine each time: a container's address changes when it
// restarts.
func (d *Driver) Endpoint(ctx context.Context, h driver.Handle, p driver.Port) (string, error) {
	ins, err := d.inspectManaged(ctx, h.ID)
	if err != nil {
		return "", err
	}
	port := strconv.Itoa(int(p.Target))
	if ins.HostConfig != nil && ins.HostConfig.NetworkMode.IsHost() {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if ns := ins.NetworkSettings; ns != nil {
		// The network the container was created on first (a task's first
		// swarm network's bridge, or the default bridge), then the others
		// by name: every bridge of the node reaches the container, the
		// choice only needs to be stable.
		var names []string
		if ins.HostConfig != nil {
			names = append(names, string(ins.HostConfig.NetworkMode))
		}
		names = append(names, slices.Sorted(maps.Keys(ns.Networks))...)
		for _, name := range names {
			if ep := ns.Networks[name]; ep != nil && ep.IPAddress.IsValid() {
				return net.JoinHostPort(ep.IPAddress.String(), port), nil
			}
		}
	}
	return "", errdefs.Unavailable("container %s has no network address yet", h.ID)
}

// Addresses are the container's addresses on its networks.
func (d *Driver) Addresses(ctx context.Context, h driver.Handle) ([]netip.Addr, error) {
	ins, err := d.inspectManaged(ctx, h.ID)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	if ns := ins.NetworkSettings; ns != nil {
		for _, ep := range ns.Networks {
			if ep != nil && ep.IPAddress.IsValid() {
				out = append(out, ep.IPAddress.Unmap())
			}
		}
	}
	return out, nil
}
