package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// meshAnswer is what the e2e app answers on a published port.
type meshAnswer struct {
	task, node, client string
	conn               net.Conn // left open; the caller closes it
}

// askMesh connects to host:port and reads the app's one-line answer.
func askMesh(host string, port uint32) (meshAnswer, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))), 2*time.Second)
	if err != nil {
		return meshAnswer{}, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return meshAnswer{}, fmt.Errorf("%s:%d: %v", host, port, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	a := meshAnswer{conn: c}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "task":
			a.task = v
		case "node":
			a.node = v
		case "client":
			a.client = v
		}
	}
	return a, nil
}

// meshNodes asks host:port n times and returns the nodes whose tasks
// answered.
func meshNodes(host string, port uint32, n int) (map[string]int, error) {
	seen := map[string]int{}
	for range n {
		a, err := askMesh(host, port)
		if err != nil {
			return seen, err
		}
		a.conn.Close()
		seen[a.node]++
	}
	return seen, nil
}

func meshServiceSpec(name, app string, port uint32, replicas uint64, labels map[string]string, env ...string) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: app, Env: append([]string{"E2E_SERVE=1"}, env...),
			Labels: map[string]string{"com.flotilla.driver": "process"}}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: port}}},
	}
}

// TestRoutingMesh publishes a process-driver service on a port: every node
// answers on it and spreads connections over the tasks on both nodes; the
// port is refused to a second service; a task whose node stops answering
// leaves rotation on the other node, and the connection open to it is
// closed; with the PROXY protocol label the task sees the client's address.
func TestRoutingMesh(t *testing.T) {
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	port := uint32(freePort(t))

	status, body, err := m1.apiRequest(http.MethodPost, "/services/create", meshServiceSpec("web", app, port, 2, nil))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create web: %d %s %v", status, body, err)
	}
	m1.waitRunning(t, "web", 2, convergeTimeout, nil)

	// Every node answers, and connections reach the tasks on both nodes.
	for _, n := range []*node{m1, w1} {
		eventually(t, convergeTimeout, func() error {
			seen, err := meshNodes(n.publishHost, port, 8)
			if err != nil {
				return err
			}
			if seen[m1.id] == 0 || seen[w1.id] == 0 {
				return fmt.Errorf("connections to %s:%d reached tasks on %v; want both %s and %s", n.publishHost, port, seen, m1.id, w1.id)
			}
			return nil
		})
	}

	// Inspect shows the port as Docker does.
	var s swarm.Service
	status, body, err = m1.apiRequest(http.MethodGet, "/services/web", nil)
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &s) != nil {
		t.Fatalf("inspect web: %d %s %v", status, body, err)
	}
	if len(s.Endpoint.Ports) != 1 || s.Endpoint.Ports[0].PublishedPort != port || s.Endpoint.Ports[0].PublishMode != swarm.PortConfigPublishModeIngress ||
		s.Endpoint.Spec.Mode != swarm.ResolutionModeVIP {
		t.Errorf("web's Endpoint is %+v; want vip mode and port %d published in ingress mode", s.Endpoint, port)
	}

	// The same port for another service is refused, and nothing is made.
	status, body, err = m1.apiRequest(http.MethodPost, "/services/create", meshServiceSpec("web2", app, port, 1, nil))
	if err != nil || status != http.StatusBadRequest || !strings.Contains(string(body), "already in use by service 'web'") {
		t.Errorf("second service on port %d: %d %s %v; want 400 naming web", port, status, body, err)
	}

	// A connection held open to w1's task through m1, then w1 stops
	// answering (paused): m1 closes that connection and sends every new
	// one to its own task once w1 is Down.
	var held net.Conn
	eventually(t, convergeTimeout, func() error {
		a, err := askMesh(m1.publishHost, port)
		if err != nil {
			return err
		}
		if a.node != w1.id {
			a.conn.Close()
			return fmt.Errorf("answered by %s, waiting for w1's task", a.node)
		}
		held = a.conn
		return nil
	})
	defer held.Close()
	if err := w1.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w1.signal(syscall.SIGCONT) }()
	start := time.Now()
	eventually(t, downTimeout, func() error {
		seen, err := meshNodes(m1.publishHost, port, 4)
		if err != nil {
			return err
		}
		if seen[w1.id] > 0 || seen[m1.id] != 4 {
			return fmt.Errorf("connections reached %v; want only m1's task", seen)
		}
		return nil
	})
	t.Logf("w1's task left rotation on m1 %s after w1 was paused", time.Since(start).Round(time.Millisecond))
	_ = held.SetReadDeadline(time.Now().Add(downTimeout))
	if _, err := held.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("the connection open to w1's task was not closed when it left rotation (read: %v)", err)
	}
	if err := w1.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	// Moving the published port with the CLI keeps the tasks and the
	// other port; removing it closes the port on every node.
	before := taskIDs(t, m1, "web")
	port2 := uint32(freePort(t))
	m1.mustCLI(t, "service", "update", "-d", "--publish-add", fmt.Sprintf("%d:80", port2), "web")
	eventually(t, convergeTimeout, func() error {
		if _, err := meshNodes(w1.publishHost, port2, 2); err != nil {
			return err
		}
		if a, err := askMesh(w1.publishHost, port); err == nil {
			a.conn.Close()
			return fmt.Errorf("the old port %d still answers", port)
		}
		return nil
	})
	if after := taskIDs(t, m1, "web"); !slices.Equal(before, after) {
		t.Errorf("moving a published port replaced the tasks: %v, then %v", before, after)
	}
	m1.mustCLI(t, "service", "update", "-d", "--publish-rm", "80", "--publish-add", "target=81", "web")
	eventually(t, convergeTimeout, func() error {
		if a, err := askMesh(w1.publishHost, port2); err == nil {
			a.conn.Close()
			return fmt.Errorf("port %d still answers after --publish-rm", port2)
		}
		return nil
	})
	if out := m1.mustCLI(t, "service", "inspect", "--format", "{{json .Endpoint.Ports}}", "web"); !strings.Contains(out, `"TargetPort":81`) || strings.Contains(out, `"TargetPort":80`) {
		t.Errorf("after --publish-rm 80 the ports are %s; want only target 81 (with a port from 30000-32767)", out)
	}

	// PROXY protocol: the task sees the client's own address.
	pport := uint32(freePort(t))
	spec := meshServiceSpec("proxied", app, pport, 1, map[string]string{"com.flotilla.proxy-protocol": "v1"}, "E2E_PROXY=1")
	status, body, err = m1.apiRequest(http.MethodPost, "/services/create", spec)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create proxied: %d %s %v", status, body, err)
	}
	eventually(t, convergeTimeout, func() error {
		a, err := askMesh(m1.publishHost, pport)
		if err != nil {
			return err
		}
		defer a.conn.Close()
		if want := a.conn.LocalAddr().String(); a.client != want {
			return fmt.Errorf("the task saw client %q, want %q", a.client, want)
		}
		return nil
	})
}

// taskIDs lists the IDs of a service's running tasks, sorted.
func taskIDs(t *testing.T, via *node, service string) []string {
	t.Helper()
	rows, err := via.servicePs(service)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rows {
		if r.running() {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestHostModePort publishes a port in host mode: only the nodes running a
// task listen, each task sees the client's real address, and a replica
// that would need a second task on a node holding the port stays pending
// with the reason.
func TestHostModePort(t *testing.T) {
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	port := freePort(t)

	m1.mustCLI(t, "service", "create", "-d", "--name", "direct", "--driver", "process", "--replicas", "3",
		"--publish", fmt.Sprintf("mode=host,published=%d,target=80", port), "-e", "E2E_SERVE=1", app)
	eventually(t, convergeTimeout, func() error {
		if ids := taskIDs(t, m1, "direct"); len(ids) != 2 {
			return fmt.Errorf("%d tasks of direct run, want 2 (one per node)", len(ids))
		}
		return nil
	})
	for _, n := range []*node{m1, w1} {
		eventually(t, convergeTimeout, func() error {
			a, err := askMesh(n.publishHost, uint32(port))
			if err != nil {
				return err
			}
			defer a.conn.Close()
			if a.node != n.id {
				return fmt.Errorf("%s:%d answered by a task on %s; want the task of that node", n.publishHost, port, a.node)
			}
			if want := a.conn.LocalAddr().String(); a.client != want {
				return fmt.Errorf("the task saw client %q; want the real address %q", a.client, want)
			}
			return nil
		})
	}
	eventually(t, convergeTimeout, func() error {
		rows, err := m1.servicePs("direct")
		if err != nil {
			return err
		}
		for _, r := range rows {
			if strings.Contains(r.Error, "host-mode port already in use on 2 nodes") {
				return nil
			}
		}
		return fmt.Errorf("no task of direct says why it cannot be placed: %v", rows)
	})
}

// TestRoutingMeshUDP publishes a UDP port: datagrams sent to any node
// reach the tasks on both nodes and the replies come back unchanged.
func TestRoutingMeshUDP(t *testing.T) {
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	port := freePort(t)
	m1.mustCLI(t, "service", "create", "-d", "--name", "dgram", "--driver", "process", "--replicas", "2",
		"-p", fmt.Sprintf("%d:80/udp", port), "-e", "E2E_SERVE=1", app)
	m1.waitRunning(t, "dgram", 2, convergeTimeout, nil)
	for _, n := range []*node{m1, w1} {
		eventually(t, convergeTimeout, func() error {
			seen := map[string]bool{}
			for i := range 8 {
				reply, err := udpExchange(n.publishHost, port, fmt.Sprintf("ping%d", i))
				if err != nil {
					return err
				}
				if !strings.HasSuffix(reply, fmt.Sprintf("payload=ping%d", i)) {
					return fmt.Errorf("reply %q does not carry the payload back", reply)
				}
				for _, f := range strings.Fields(reply) {
					if node, ok := strings.CutPrefix(f, "node="); ok {
						seen[node] = true
					}
				}
			}
			if !seen[m1.id] || !seen[w1.id] {
				return fmt.Errorf("datagrams to %s:%d reached tasks on %v; want both nodes", n.publishHost, port, seen)
			}
			return nil
		})
	}
}

// udpExchange sends one datagram from a new socket and reads the reply.
func udpExchange(host string, port int, msg string) (string, error) {
	c, err := net.Dial("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", fmt.Errorf("%s:%d: %v", host, port, err)
	}
	return string(buf[:n]), nil
}
