package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// frontAsk sends one request ("lookup NAME", "dial NAME:PORT") to a
// front-end task of the e2e app (E2E_FRONT=1) through host:port, and
// returns the fields of its answer (task, node, addrs, back_task, err...).
func frontAsk(host string, port uint32, req string) (map[string]string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))), 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", req); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("%s:%d %q: %v", host, port, req, err)
	}
	out := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		out[k] = v
	}
	return out, nil
}

// networkSpecOf is a service spec on networks, without published ports
// unless port is given.
func onNetworks(spec swarm.ServiceSpec, nets ...string) swarm.ServiceSpec {
	for _, n := range nets {
		spec.TaskTemplate.Networks = append(spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: n})
	}
	return spec
}

// serviceVIP is the service's virtual address on a network (by name).
func (n *node) serviceVIP(t *testing.T, service, network string) string {
	t.Helper()
	var s swarm.Service
	n.getJSON(t, "/services/"+service, &s)
	var nw struct{ ID string }
	n.getJSON(t, "/networks/"+network, &nw)
	for _, v := range s.Endpoint.VirtualIPs {
		if v.NetworkID == nw.ID {
			return v.Addr.Addr().String()
		}
	}
	t.Fatalf("service %s has no VIP on %s: %+v", service, network, s.Endpoint.VirtualIPs)
	return ""
}

// taskAddrs are the addresses of the service's running tasks on a
// network, sorted.
func (n *node) taskAddrs(t *testing.T, service, network string) []string {
	t.Helper()
	var tasks []swarm.Task
	n.getJSON(t, "/tasks?filters="+urlFilter("service", service), &tasks)
	var out []string
	for _, tk := range tasks {
		if tk.DesiredState != swarm.TaskStateRunning || tk.Status.State != swarm.TaskStateRunning {
			continue
		}
		for _, a := range tk.NetworksAttachments {
			if a.Network.Spec.Name == network {
				for _, p := range a.Addresses {
					out = append(out, p.Addr().String())
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func sortedList(s string) []string {
	out := strings.Split(s, ",")
	slices.Sort(out)
	return out
}

// TestServiceDiscoverySeparateHosts runs a manager and two workers each in
// its own network namespace, with process-driver tasks: a front end
// published on a port reaches a back end by name on every host, through
// its virtual address (spread over the back end's tasks on every host)
// and with dnsrr; tasks.NAME lists each running task; a service on
// another network cannot resolve the back end.
func TestServiceDiscoverySeparateHosts(t *testing.T) {
	nn := newNetnsNet(t, 3)
	c := newNetnsCluster(t, nn, 1, 2, "--no-docker")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	checkFrontBack(t, c, func(spec swarm.ServiceSpec) swarm.ServiceSpec {
		spec.TaskTemplate.ContainerSpec.Image = app
		return spec
	}, false)
}

// frontBackSpec is a service of the e2e app on networks, published on
// port unless it is 0.
func frontBackSpec(name string, port uint32, replicas uint64, nets []string, env ...string) swarm.ServiceSpec {
	spec := onNetworks(meshServiceSpec(name, "", port, replicas, nil, env...), nets...)
	if port == 0 {
		spec.EndpointSpec = nil
	}
	return spec
}

// checkFrontBack makes two networks and four services of the e2e app
// (adapted to the driver by taskSpec) and checks discovery as a user
// sees it: through each node's published port, a front end resolves back
// to its VIP and reaches all its tasks through it, tasks.back and a dnsrr
// service resolve to their tasks' addresses, and a service on another
// network cannot resolve back (nor, when isolated, reach its VIP).
func checkFrontBack(t *testing.T, c *cluster, taskSpec func(swarm.ServiceSpec) swarm.ServiceSpec, isolated bool) {
	t.Helper()
	m1 := c.managers[0]
	port, otherPort := uint32(8080), uint32(8081)
	if c.place == nil { // nodes share this machine's port space
		port, otherPort = uint32(freePort(t)), uint32(freePort(t))
	}
	for _, name := range []string{"appnet", "othernet"} {
		if status, body, err := m1.apiRequest(http.MethodPost, "/networks/create", map[string]any{"Name": name, "Driver": "overlay"}); err != nil || status != http.StatusCreated {
			t.Fatalf("create network %s: %d %s %v", name, status, body, err)
		}
	}
	rr := frontBackSpec("backrr", 0, 2, []string{"appnet"})
	rr.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	for _, spec := range []swarm.ServiceSpec{
		frontBackSpec("back", 0, 3, []string{"appnet"}), rr,
		frontBackSpec("front", port, 2, []string{"appnet"}, "E2E_FRONT=1"),
		frontBackSpec("stranger", otherPort, 1, []string{"othernet"}, "E2E_FRONT=1"),
	} {
		spec = taskSpec(spec)
		if status, body, err := m1.apiRequest(http.MethodPost, "/services/create", spec); err != nil || status != http.StatusCreated {
			t.Fatalf("create %s: %d %s %v", spec.Name, status, body, err)
		}
	}
	backRows := m1.waitRunning(t, "back", 3, convergeTimeout, nil)
	m1.waitRunning(t, "backrr", 2, convergeTimeout, nil)
	m1.waitRunning(t, "front", 2, convergeTimeout, nil)
	m1.waitRunning(t, "stranger", 1, convergeTimeout, nil)

	vip := m1.serviceVIP(t, "back", "appnet")
	backAddrs := m1.taskAddrs(t, "back", "appnet")
	rrAddrs := m1.taskAddrs(t, "backrr", "appnet")
	if len(backAddrs) != 3 || len(rrAddrs) != 2 {
		t.Fatalf("task addresses: back %v, backrr %v", backAddrs, rrAddrs)
	}
	var backIDs []string
	for _, r := range backRows {
		backIDs = append(backIDs, r.ID)
	}
	for _, n := range c.nodes {
		eventually(t, convergeTimeout, func() error {
			a, err := frontAsk(n.publishHost, port, "lookup back")
			if err != nil {
				return err
			}
			if a["addrs"] != vip {
				return fmt.Errorf("via %s, front task %s resolved back to %q (%s), want its VIP %s", n, a["task"], a["addrs"], a["err"], vip)
			}
			return nil
		})
		// Through the VIP, every task of back answers, wherever it runs.
		eventually(t, convergeTimeout, func() error {
			seen := map[string]int{}
			for range 15 {
				a, err := frontAsk(n.publishHost, port, "dial back:80")
				if err != nil {
					return err
				}
				if a["err"] != "" {
					return fmt.Errorf("via %s, front %s could not reach back: %s", n, a["task"], a["err"])
				}
				seen[a["back_task"]]++
			}
			for _, id := range backIDs {
				if seen[id] == 0 {
					return fmt.Errorf("via %s, back's tasks reached: %v; none of %s", n, seen, id)
				}
			}
			return nil
		})
	}
	a, err := frontAsk(m1.publishHost, port, "lookup tasks.back")
	if err != nil || !slices.Equal(sortedList(a["addrs"]), backAddrs) {
		t.Errorf("tasks.back resolved to %q (%v, %s), want %v", a["addrs"], err, a["err"], backAddrs)
	}
	a, err = frontAsk(m1.publishHost, port, "lookup backrr")
	if err != nil || !slices.Equal(sortedList(a["addrs"]), rrAddrs) {
		t.Errorf("dnsrr backrr resolved to %q (%v, %s), want its tasks %v", a["addrs"], err, a["err"], rrAddrs)
	}
	for range 4 {
		a, err := frontAsk(m1.publishHost, port, "dial backrr:80")
		if err != nil || a["err"] != "" || a["back_task"] == "" {
			t.Fatalf("dial backrr: %v %v", a, err)
		}
	}
	// Another network's task cannot resolve back.
	a, err = frontAsk(m1.publishHost, otherPort, "lookup back")
	if err != nil || a["err"] == "" {
		t.Errorf("a task on othernet resolved back: %v %v", a, err)
	}
	if isolated {
		for _, dst := range []string{vip, backAddrs[0]} {
			a, err = frontAsk(m1.publishHost, otherPort, "dial "+net.JoinHostPort(dst, "80"))
			if err != nil || a["err"] == "" {
				t.Errorf("a task on othernet reached back at %s: %v %v", dst, a, err)
			}
		}
	}
}

// getJSON GETs an Engine API path on the node and decodes its answer.
func (n *node) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	status, body, err := n.apiRequest(http.MethodGet, path, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, status, body, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// urlFilter is an Engine API filters argument with one key and value.
func urlFilter(key, value string) string {
	b, _ := json.Marshal(map[string]map[string]bool{key: {value: true}})
	return url.QueryEscape(string(b))
}

// TestServiceDiscoveryDocker is checkFrontBack with docker-driver tasks
// of an image the test builds, on a manager and a worker sharing this
// machine's engine: containers resolve names through the engine's
// embedded DNS, which asks their node's DNS server on their bridge; and a
// container of another network can reach neither back's VIP nor its
// tasks. The nodes' bridges are gone once the services are removed.
func TestServiceDiscoveryDocker(t *testing.T) {
	requireE2E(t)
	api := engineOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	runID := randHex(6)
	image := "flotilla-e2e/discovery:" + runID
	const runLabel = "com.flotilla.e2e"
	buildE2EImage(ctx, t, api, image)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := api.ImageRemove(ctx, image, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("removing image %s: %v", image, err)
		}
	})
	var c *cluster
	bridgesOf := func(ctx context.Context) []string {
		var out []string
		for _, n := range c.nodes {
			res, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("label", "com.flotilla.managed=true", "com.docker.swarm.node.id="+n.id)})
			if err != nil {
				t.Errorf("listing %s's bridges: %v", n, err)
				continue
			}
			for _, nw := range res.Items {
				out = append(out, nw.Name)
			}
		}
		return out
	}
	t.Cleanup(func() { // after the cluster's cleanup and the containers'
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, name := range bridgesOf(ctx) {
			if _, err := api.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
				t.Errorf("removing bridge %s: %v", name, err)
			}
		}
	})
	// Containers go first (cleanups run last-registered first), then their bridges.
	removeContainersAtEnd(t, api, client.Filters{}.Add("label", "com.flotilla.managed=true", runLabel+"="+runID))
	c = newCluster(t, 1, 1)
	checkFrontBack(t, c, func(spec swarm.ServiceSpec) swarm.ServiceSpec {
		spec.TaskTemplate.ContainerSpec.Image = image
		spec.TaskTemplate.ContainerSpec.Labels = map[string]string{"com.flotilla.driver": "docker", runLabel: runID}
		return spec
	}, true)

	// A service on both networks resolves and reaches both.
	m1 := c.managers[0]
	both := frontBackSpec("both", uint32(freePort(t)), 1, []string{"othernet", "appnet"}, "E2E_FRONT=1")
	both.TaskTemplate.ContainerSpec.Image = image
	both.TaskTemplate.ContainerSpec.Labels = map[string]string{"com.flotilla.driver": "docker", runLabel: runID}
	if status, body, err := m1.apiRequest(http.MethodPost, "/services/create", both); err != nil || status != http.StatusCreated {
		t.Fatalf("create both: %d %s %v", status, body, err)
	}
	m1.waitRunning(t, "both", 1, convergeTimeout, nil)
	bothPort := both.EndpointSpec.Ports[0].PublishedPort
	eventually(t, convergeTimeout, func() error {
		for _, req := range []string{"dial back:80", "lookup stranger", "lookup back"} {
			a, err := frontAsk(m1.publishHost, bothPort, req)
			if err != nil {
				return err
			}
			if a["err"] != "" {
				return fmt.Errorf("a task on both networks: %q failed: %s", req, a["err"])
			}
		}
		return nil
	})
	// An internal network's tasks reach nothing outside the cluster: an
	// address routed through the node (a host of a namespace the test
	// makes) answers a task of appnet, not one of an internal network.
	if os.Geteuid() == 0 {
		outside := startOutsideHost(t)
		if status, body, err := m1.apiRequest(http.MethodPost, "/networks/create", map[string]any{"Name": "private", "Driver": "overlay", "Internal": true}); err != nil || status != http.StatusCreated {
			t.Fatalf("create network private: %d %s %v", status, body, err)
		}
		shut := frontBackSpec("shut", uint32(freePort(t)), 1, []string{"private"}, "E2E_FRONT=1")
		shut.TaskTemplate.ContainerSpec.Image = image
		shut.TaskTemplate.ContainerSpec.Labels = map[string]string{"com.flotilla.driver": "docker", runLabel: runID}
		if status, body, err := m1.apiRequest(http.MethodPost, "/services/create", shut); err != nil || status != http.StatusCreated {
			t.Fatalf("create shut: %d %s %v", status, body, err)
		}
		m1.waitRunning(t, "shut", 1, convergeTimeout, nil)
		eventually(t, convergeTimeout, func() error {
			a, err := frontAsk(m1.publishHost, bothPort, "dial "+outside)
			if err != nil || a["err"] != "" {
				return fmt.Errorf("a task of appnet could not reach %s outside: %v %v", outside, a, err)
			}
			return nil
		})
		shutPort := shut.EndpointSpec.Ports[0].PublishedPort
		eventually(t, convergeTimeout, func() error {
			// Published, and resolving its network's names.
			a, err := frontAsk(m1.publishHost, shutPort, "lookup shut")
			if err != nil || a["err"] != "" {
				return fmt.Errorf("a task on an internal network could not resolve its own service: %v %v", a, err)
			}
			return nil
		})
		if a, err := frontAsk(m1.publishHost, shutPort, "dial "+outside); err != nil || a["err"] == "" {
			t.Errorf("a task on an internal network reached %s outside: %v %v", outside, a, err)
		}
	}
	for _, s := range []string{"front", "stranger", "back", "backrr", "both", "shut"} {
		if status, body, err := m1.apiRequest(http.MethodDelete, "/services/"+s, nil); err != nil || status != http.StatusOK {
			t.Fatalf("remove %s: %d %s %v", s, status, body, err)
		}
	}
	eventually(t, convergeTimeout, func() error {
		if left := bridgesOf(ctx); len(left) > 0 {
			return fmt.Errorf("bridges left after the services were removed: %v", left)
		}
		return nil
	})
}

// startOutsideHost makes a host outside the cluster, in a network
// namespace routed through this machine, running the e2e app on port 80,
// and returns its address (host:80).
func startOutsideHost(t *testing.T) string {
	t.Helper()
	nn := newNetnsNet(t, 1)
	cmd := exec.Command("ip", "netns", "exec", nn.hosts[0], buildE2EApp(t.Context(), t))
	cmd.Env = append(os.Environ(), "E2E_SERVE=1", "FLOTILLA_TASK_ID=outside")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort(nn.hostsIP[0], "80")
	eventually(t, convergeTimeout, func() error {
		a, err := askMesh(nn.hostsIP[0], 80)
		if err != nil {
			return err
		}
		a.conn.Close()
		return nil
	})
	return addr
}
