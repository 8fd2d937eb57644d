package process

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// A process shares the node's network, so it cannot listen on its target
// port (two replicas on one node would collide). Each target port gets a
// free loopback port instead, handed to the task as FLOTILLA_PORT_<target>
// (as Nomad's NOMAD_PORT_*): the task listens on 127.0.0.1 at that port
// and the routing mesh, on the same node, connects to it there.

const extraPortPrefix = "port."

// allocatePorts picks a free loopback port for each target port. It
// returns them keyed for Handle.Extra, and the task's environment.
func allocatePorts(ports []driver.Port) (map[string]string, []string, error) {
	extra := map[string]string{}
	var env []string
	for _, p := range ports {
		if p.Proto != "tcp" {
			return nil, nil, errdefs.Invalid("port %s: the process driver publishes tcp ports only", p)
		}
		key := extraPortPrefix + p.String()
		if extra[key] != "" {
			continue
		}
		addr, err := freeLoopbackPort()
		if err != nil {
			return nil, nil, fmt.Errorf("no free port for %s: %w", p, err)
		}
		extra[key] = addr
		_, port, _ := net.SplitHostPort(addr)
		env = append(env, "FLOTILLA_PORT_"+strconv.Itoa(int(p.Target))+"="+port)
	}
	return extra, env, nil
}

// freeLoopbackPort asks the kernel for a free port. Another program may
// take it before the task listens; the task then fails to bind, exits and
// is restarted with a new port, as any failed start.
func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Endpoint says where the task listens on a target port.
func (d *Driver) Endpoint(_ context.Context, h driver.Handle, p driver.Port) (string, error) {
	if a := h.Extra[extraPortPrefix+p.String()]; a != "" {
		return a, nil
	}
	return "", errdefs.NotFound("task %s does not expose port %s", h.ID, p)
}
