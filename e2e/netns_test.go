package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/internal/hostsim"
)

// netnsNet is a network of separate hosts on this machine, made by the
// test (internal/hostsim) and removed by its cleanup.
type netnsNet struct {
	t       *testing.T
	net     *hostsim.Net
	prefix  string   // of the namespaces' names, unique to this process
	subnet  string   // "10.77.N."
	hosts   []string // the nodes' namespaces
	hostsIP []string // their addresses
}

// needNetns skips the test where namespaces cannot be made.
func needNetns(t *testing.T) {
	t.Helper()
	requireE2E(t)
	if os.Geteuid() != 0 {
		t.Skip("separate hosts need network namespaces: run as root (ip netns, veth and a bridge are created and removed by the test)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("separate hosts need network namespaces: the `ip` command (iproute2) is not installed")
	}
}

// newNetnsNet makes the bridge and one namespace per host, removed when
// the test ends (after the cluster's cleanup, registered later).
func newNetnsNet(t *testing.T, hosts int) *netnsNet {
	t.Helper()
	needNetns(t)
	hn, err := hostsim.New(fmt.Sprintf("fe2e-%d-", os.Getpid()), fmt.Sprintf("fe2e%d", os.Getpid()), hosts)
	if err != nil {
		if strings.Contains(err.Error(), "no free") {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := hn.Close(); err != nil {
			t.Error(err)
		}
	})
	return &netnsNet{t: t, net: hn, prefix: hn.Prefix, subnet: hn.Subnet, hosts: hn.Hosts, hostsIP: hn.Addrs}
}

// newNetnsCluster starts a swarm whose nodes each run in a namespace of
// nn, in order, with their cluster and published ports on its address.
func newNetnsCluster(t *testing.T, nn *netnsNet, managers, workers int, daemonArgs ...string) *cluster {
	t.Helper()
	next := 0
	place := func(n *node) {
		if next >= len(nn.hosts) {
			t.Fatalf("%s: no namespace left (%d)", n, len(nn.hosts))
		}
		ns, ip := nn.hosts[next], nn.hostsIP[next]
		next++
		n.prefix = []string{"ip", "netns", "exec", ns}
		// Every host has its own port space: the same port on each.
		n.port = 2377
		n.addr = net.JoinHostPort(ip, strconv.Itoa(n.port))
		n.publishHost = ip
	}
	return newClusterPlaced(t, managers, workers, place, daemonArgs...)
}

// reachEveryNode waits until connections to port on each node of c,
// asked n times, reach a task on every node.
func reachEveryNode(t *testing.T, c *cluster, port uint32, n int) {
	t.Helper()
	for _, via := range c.nodes {
		eventually(t, convergeTimeout, func() error {
			seen, err := meshNodes(via.publishHost, port, n)
			if err != nil {
				return err
			}
			for _, want := range c.nodes {
				if seen[want.id] == 0 {
					return fmt.Errorf("connections to %s:%d reached tasks on %v; none on %s (%s)", via.publishHost, port, seen, want, want.id)
				}
			}
			return nil
		})
	}
}

// TestMeshSeparateHosts runs a manager and two workers each in its own
// network namespace: every node answers on the published port at its own
// address and reaches the tasks of the other two, which listen only on
// their namespace's 127.0.0.1, so relays cross hosts; a PROXY-protocol
// service sees the client's real (non-loopback) address through another
// host's ingress. Then a host drops off the network, and clients of the
// others never see an error.
func TestMeshSeparateHosts(t *testing.T) {
	nn := newNetnsNet(t, 3)
	c := newNetnsCluster(t, nn, 1, 2, "--no-docker")
	m1 := c.managers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	const port = 8080 // the hosts' port spaces are the test's own

	status, body, err := m1.apiRequest(http.MethodPost, "/services/create", meshServiceSpec("web", app, port, 3, nil))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create web: %d %s %v", status, body, err)
	}
	m1.waitRunning(t, "web", 3, convergeTimeout, nil)
	reachEveryNode(t, c, port, 12)

	// A task cannot be reached from outside its host: its address is the
	// loopback of its namespace.
	procs := serviceProcs("web", c.nodes...)
	if len(procs) != 3 {
		t.Fatalf("%d programs of web found, want 3: %v", len(procs), procs)
	}
	for _, p := range procs {
		host, ps, _ := net.SplitHostPort(p.env["FLOTILLA_ADDR_80"])
		port, _ := strconv.Atoi(ps)
		if a, err := askMesh(host, uint32(port)); err == nil {
			a.conn.Close()
			if a.task == p.taskID {
				t.Errorf("task %v answered at %s from the root namespace", p, p.env["FLOTILLA_ADDR_80"])
			}
		}
	}

	// The client's address crosses hosts in the PROXY header.
	const pport = 8081
	status, body, err = m1.apiRequest(http.MethodPost, "/services/create",
		meshServiceSpec("proxied", app, pport, 1, map[string]string{"com.flotilla.proxy-protocol": "v1"}, "E2E_PROXY=1"))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create proxied: %d %s %v", status, body, err)
	}
	rows := m1.waitRunning(t, "proxied", 1, convergeTimeout, nil)
	for _, n := range c.nodes {
		if n.name == rows[0].Node {
			continue
		}
		eventually(t, convergeTimeout, func() error {
			a, err := askMesh(n.publishHost, pport)
			if err != nil {
				return err
			}
			defer a.conn.Close()
			if want := a.conn.LocalAddr().String(); a.client != want || !strings.HasPrefix(want, nn.subnet) {
				return fmt.Errorf("through %s the task on %s saw client %q, want %q", n, rows[0].Node, a.client, want)
			}
			return nil
		})
	}

	// A host drops off the network (the switch port of its cable goes
	// down), as a dead machine does: clients of the other hosts, retrying
	// once, see no error while its task waits for the node-down detection,
	// and the replacement joins their rotation.
	lost := c.workers[1]
	load := startMeshLoad(t, port, 25*time.Millisecond, m1, c.workers[0])
	eventually(t, convergeTimeout, func() error {
		if n := len(load.snapshot()); n < 8 {
			return fmt.Errorf("%d connections made so far", n)
		}
		return nil
	})
	cutAt := time.Now()
	if err := nn.net.Cut(2); err != nil {
		t.Fatal(err)
	} // lost's port: the third host
	settled := time.Now()
	downAt := waitDown(t, m1, lost)
	rows = m1.waitRunning(t, "web", 3, convergeTimeout, func(name string) bool { return name != lost.name })
	eventually(t, convergeTimeout, func() error { return load.reached(downAt, rows) })
	load.stop()
	retried, failed := load.check(t, cutAt, settled)
	t.Logf("%s cut off: Down at +%s; %d connections, %d retried once, %d failed twice",
		lost, downAt.Sub(cutAt).Round(time.Millisecond), len(load.snapshot()), retried, failed)
}
