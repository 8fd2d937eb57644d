package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
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
	m1 := c.managers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	const port, otherPort = 8080, 8081

	for _, name := range []string{"appnet", "othernet"} {
		if status, body, err := m1.apiRequest(http.MethodPost, "/networks/create", map[string]any{"Name": name, "Driver": "overlay"}); err != nil || status != http.StatusCreated {
			t.Fatalf("create network %s: %d %s %v", name, status, body, err)
		}
	}
	create := func(spec swarm.ServiceSpec) {
		t.Helper()
		if status, body, err := m1.apiRequest(http.MethodPost, "/services/create", spec); err != nil || status != http.StatusCreated {
			t.Fatalf("create %s: %d %s %v", spec.Name, status, body, err)
		}
	}
	back := onNetworks(meshServiceSpec("back", app, 0, 3, nil), "appnet")
	back.EndpointSpec = nil
	create(back)
	rr := onNetworks(meshServiceSpec("backrr", app, 0, 2, nil), "appnet")
	rr.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	create(rr)
	create(onNetworks(meshServiceSpec("front", app, port, 3, nil, "E2E_FRONT=1"), "appnet"))
	create(onNetworks(meshServiceSpec("stranger", app, otherPort, 1, nil, "E2E_FRONT=1"), "othernet"))
	backRows := m1.waitRunning(t, "back", 3, convergeTimeout, nil)
	m1.waitRunning(t, "backrr", 2, convergeTimeout, nil)
	m1.waitRunning(t, "front", 3, convergeTimeout, nil)
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
