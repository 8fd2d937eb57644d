package process

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// A process shares the node's network, so it cannot listen on its target
// port (two replicas on one node would collide). Each target port gets a
// free loopback port instead, handed to the task as FLOTILLA_PORT_<target>
// (as Nomad's NOMAD_PORT_*) and FLOTILLA_ADDR_<target> (host:port): the
// task listens there, and the routing mesh on the same node connects to
// it. A port published in host mode is the published port itself on the
// node's publish address, where clients connect to the task directly.

const extraPortPrefix = "port."

// allocatePorts picks the address of each port. It returns them keyed for
// Handle.Extra, and the task's environment.
func allocatePorts(ports []driver.Port) (map[string]string, []string, error) {
	extra := map[string]string{}
	var env []string
	// Host-mode ports first: a target published both ways is bound once,
	// where clients reach it directly, and the mesh uses that address too.
	ordered := slices.SortedStableFunc(slices.Values(ports), func(a, b driver.Port) int {
		switch {
		case a.Host == b.Host:
			return 0
		case a.Host:
			return -1
		}
		return 1
	})
	for _, p := range ordered {
		if p.Proto != "tcp" && p.Proto != "udp" {
			return nil, nil, errdefs.Invalid("port %s: the process driver publishes tcp and udp ports only", p)
		}
		key := extraPortPrefix + p.String()
		if extra[key] != "" {
			continue
		}
		host, port := "127.0.0.1", "0"
		if p.Host {
			host, port = p.HostIP, strconv.Itoa(int(p.Published))
		}
		addr, err := freePort(p.Proto, net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, fmt.Errorf("port %s: %w", p, err)
		}
		_, bound, _ := net.SplitHostPort(addr)
		if host == "" {
			addr = net.JoinHostPort("127.0.0.1", bound) // all addresses: the mesh uses loopback
		}
		extra[key] = addr
		t := strconv.Itoa(int(p.Target))
		if p.Proto == "udp" {
			t += "_UDP" // FLOTILLA_PORT_53 is 53/tcp, FLOTILLA_PORT_53_UDP 53/udp
		}
		env = append(env, "FLOTILLA_PORT_"+t+"="+bound, "FLOTILLA_ADDR_"+t+"="+net.JoinHostPort(host, bound))
	}
	return extra, env, nil
}

// freePort checks that addr can be bound (asking the kernel for a free
// port when its port is 0) and returns the address bound. Another program
// may take it before the task listens; the task then fails to bind, exits
// and is restarted, as any failed start.
func freePort(proto, addr string) (string, error) {
	if proto == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return "", err
		}
		defer pc.Close()
		return pc.LocalAddr().String(), nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Endpoint says where the task listens on a target port: the address
// given for a published port, else (a task on swarm networks reached by
// name, on any port) the port on the task's own loopback address.
func (d *Driver) Endpoint(_ context.Context, h driver.Handle, p driver.Port) (string, error) {
	if a := h.Extra[extraPortPrefix+p.String()]; a != "" {
		return a, nil
	}
	if ip := h.Extra[extraIP]; ip != "" && p.Proto == "tcp" {
		return net.JoinHostPort(ip, strconv.Itoa(int(p.Target))), nil
	}
	return "", errdefs.NotFound("task %s does not expose port %s", h.ID, p)
}

// extraIP is the Handle.Extra key of a task's own loopback address.
const extraIP = "ip"

// A process task on swarm networks cannot hold its virtual addresses
// (they are on no interface, and it shares the node's network), so it
// gets FLOTILLA_IP, a loopback address of its own (driver.TaskLoopback)
// to listen on for connections to it by name on any port, and
// FLOTILLA_DNS, the server (host:port) that resolves its networks' names.
func networkEnv(spec driver.Spec) (map[string]string, []string) {
	ip, ok := driver.TaskLoopback(spec.Networks)
	if !ok {
		return nil, nil
	}
	env := []string{"FLOTILLA_IP=" + ip.String()}
	if spec.DNS != "" {
		env = append(env, "FLOTILLA_DNS="+spec.DNS)
	}
	return map[string]string{extraIP: ip.String()}, env
}

// NodeNetworked implements driver.NodeNetworked: a process shares the
// node's network.
func (d *Driver) NodeNetworked() {}
