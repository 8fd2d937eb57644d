package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/netrules"
)

// TestMeshKernelBetweenHosts runs three hosts (network namespaces) with
// --mesh-kernel-between-nodes: a connection to a node without the task
// reaches it through nat rules on both hosts, so the task sees the entry
// node's address (its SNAT) where the relay would show its own node's
// loopback; the task's node sees the client itself. Every node still
// reaches every task, a host that drops off leaves every node's rules
// once the managers mark it Down (and an open connection to it is
// reset, not left hanging), and a stopped daemon leaves no chain.
func TestMeshKernelBetweenHosts(t *testing.T) {
	nn := newNetnsNet(t, 3)
	if _, err := netrules.Detect(); err != nil {
		t.Skipf("needs iptables: %v", err)
	}
	c := newNetnsCluster(t, nn, 1, 2, "--no-docker", "--mesh-kernel-between-nodes")
	m1, w1, w2 := c.managers[0], c.workers[0], c.workers[1]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	const port = 8080

	// One task, on w1.
	spec := meshServiceSpec("web", app, port, 1, nil)
	spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.hostname==" + w1.name}}
	status, body, err := m1.apiRequest(http.MethodPost, "/services/create", spec)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create web: %d %s %v", status, body, err)
	}
	m1.waitRunning(t, "web", 1, convergeTimeout, nil)
	for _, entry := range []*node{m1, w2} {
		eventually(t, convergeTimeout, func() error {
			a, err := askMesh(entry.publishHost, port)
			if err != nil {
				return err
			}
			a.conn.Close()
			if host, _, _ := net.SplitHostPort(a.client); a.node != w1.id || host != entry.publishHost {
				return fmt.Errorf("through %s: answered by node %s seeing client %s; want w1's task seeing %s (the kernel path between nodes)", entry, a.node, a.client, entry.publishHost)
			}
			return nil
		})
	}
	a, err := askMesh(w1.publishHost, port)
	if err != nil {
		t.Fatal(err)
	}
	if a.client != a.conn.LocalAddr().String() {
		t.Errorf("through w1 itself the task saw %s, want the client's own %s", a.client, a.conn.LocalAddr())
	}
	a.conn.Close()
	// A node in a fresh namespace may choose either iptables backend.
	nat := func(n *node) string {
		t.Helper()
		var all string
		for _, bin := range []string{"iptables", "iptables-legacy"} {
			if _, err := exec.LookPath(bin); err != nil {
				continue
			}
			out, err := exec.Command("ip", append(n.prefix[1:], bin, "-w", "-t", "nat", "-S")...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s -t nat -S in %s: %v: %s", bin, n, err, out)
			}
			all += string(out)
		}
		return all
	}
	if rules := nat(m1); !strings.Contains(rules, "--to-destination "+w1.publishHost+":8080") {
		t.Fatalf("m1 has no DNAT rule to w1:\n%s", rules)
	}

	// Three tasks, one a node: every node reaches each node's task.
	const all = 8081
	status, body, err = m1.apiRequest(http.MethodPost, "/services/create", meshServiceSpec("all", app, all, 3, nil))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create all: %d %s %v", status, body, err)
	}
	m1.waitRunning(t, "all", 3, convergeTimeout, nil)
	reachEveryNode(t, c, all, 24)
	// The nodes' addresses come a moment after the routing table (at most
	// one answer a second): until then a connection may take a second
	// hop. Once every node marks the other two's connections, a node that
	// takes a connection from another node's rules keeps it: were it sent
	// on, the task would see the second node's address.
	for _, n := range c.nodes {
		chain := netrules.NodeChain(n.id) + "-PF"
		eventually(t, convergeTimeout, func() error {
			rules := nat(n)
			for _, o := range c.nodes {
				if o != n && !strings.Contains(rules, "-A "+chain+" -s "+o.publishHost+"/32") {
					return fmt.Errorf("%s does not mark %s's connections yet:\n%s", n, o, rules)
				}
			}
			return nil
		})
	}
	for _, n := range c.nodes {
		for range 30 {
			a, err := askMesh(n.publishHost, all)
			if err != nil {
				t.Fatal(err)
			}
			a.conn.Close()
			if host, _, _ := net.SplitHostPort(a.client); a.node != n.id && host != n.publishHost {
				t.Fatalf("through %s the task on node %s saw client %s, want %s: the connection was sent on", n, a.node, a.client, n.publishHost)
			}
		}
	}

	// A connection through m1 to w2's task, open when w2's host drops
	// off the network.
	var open net.Conn
	for range 60 {
		a, err := askMesh(m1.publishHost, all)
		if err != nil {
			t.Fatal(err)
		}
		if a.node == w2.id {
			open = a.conn
			break
		}
		a.conn.Close()
	}
	if open == nil {
		t.Fatal("60 connections through m1, none to w2's task")
	}
	defer open.Close()

	// w2's host drops off the network: once it is Down, m1's rules no
	// longer send to it, and every connection through m1 is answered.
	if err := nn.net.Cut(2); err != nil {
		t.Fatal(err)
	}
	waitDown(t, m1, w2)
	eventually(t, convergeTimeout, func() error {
		if rules := nat(m1); strings.Contains(rules, w2.publishHost+":8081") {
			return fmt.Errorf("m1 still sends to the lost host:\n%s", rules)
		}
		return nil
	})
	// The open connection is not left hanging: its next packet is
	// reset, where it would go on to the lost host until TCP gives up.
	_ = open.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := open.Write([]byte("still there?\n")); err == nil {
		_, err = open.Read(make([]byte, 512))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("a connection to the lost host's task still hangs after it was marked Down: %v", err)
		}
	}
	for range 20 {
		a, err := askMesh(m1.publishHost, all)
		if err != nil {
			t.Fatalf("through m1 after w2 was marked Down: %v", err)
		}
		a.conn.Close()
	}

	// A stopped daemon leaves no chain behind.
	m1.Stop()
	if rules := nat(m1); strings.Contains(rules, netrules.NodeChain(m1.id)) {
		t.Fatalf("m1 stopped, its chains are left:\n%s", rules)
	}
}
