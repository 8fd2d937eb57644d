package testcluster_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/testcluster"
)

// listNetworkNames lists the networks one node answers, by name.
func listNetworkNames(t *testing.T, via *testcluster.Node) ([]string, error) {
	res, err := via.Client.NetworkList(reqCtx(t), client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("network ls through %s: %w", via.Name, err)
	}
	var names []string
	for _, n := range res.Items {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return names, nil
}

func networkNames(t *testing.T, via *testcluster.Node) []string {
	t.Helper()
	names, err := listNetworkNames(t, via)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// networksAre waits until a node lists exactly want.
func networksAre(t *testing.T, c *testcluster.Cluster, via *testcluster.Node, want ...string) {
	t.Helper()
	c.Eventually(10*time.Second, func() error {
		names, err := listNetworkNames(t, via)
		if err == nil && !slices.Equal(names, want) {
			err = fmt.Errorf("%s lists networks %v, want %v", via.Name, names, want)
		}
		return err
	})
}

func inspectNetwork(t *testing.T, via *testcluster.Node, ref string) network.Inspect {
	t.Helper()
	res, err := via.Client.NetworkInspect(reqCtx(t), ref, client.NetworkInspectOptions{})
	if err != nil {
		t.Fatalf("network inspect %s through %s: %v", ref, via.Name, err)
	}
	return res.Network
}

// TestNetworks drives the networks API on three managers: the ingress
// network from init, create/list/inspect/remove through followers, bad
// input refused with nothing changed, removal refused while in use, and
// an ingress removed by the user that a new leader does not make again.
func TestNetworks(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 3})
	leader := c.Leader()
	follower := c.Followers()[0]

	// The ingress network exists from swarm init, as in Docker.
	in := inspectNetwork(t, follower, "ingress")
	if !in.Ingress || in.Driver != "overlay" || in.Scope != "swarm" || len(in.IPAM.Config) != 1 ||
		in.IPAM.Config[0].Subnet.String() != "10.0.0.0/24" || in.IPAM.Config[0].Gateway.String() != "10.0.0.1" {
		t.Fatalf("ingress = %+v", in)
	}

	// Created through a follower (forwarded to the leader), seen on all.
	res, err := follower.Client.NetworkCreate(reqCtx(t), "web", client.NetworkCreateOptions{Driver: "overlay", Attachable: true,
		Labels: map[string]string{"tier": "front"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Managers() {
		networksAre(t, c, n, "ingress", "web")
	}
	web := inspectNetwork(t, leader, res.ID[:6])
	if web.ID != res.ID || web.Name != "web" || !web.Attachable || web.Labels["tier"] != "front" ||
		web.IPAM.Config[0].Subnet.String() != "10.0.1.0/24" {
		t.Errorf("web = %+v", web)
	}

	svcNet := func(targets ...string) string {
		s := replicated("onnet", 1)
		for _, target := range targets {
			s.TaskTemplate.Networks = append(s.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: target})
		}
		b, _ := json.Marshal(s)
		return string(b)
	}
	pub := replicated("pub", 0)
	pub.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 18080}}}
	createService(t, c, leader, pub)

	before := networkNames(t, leader)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"DuplicateName", "POST", "/v1.47/networks/create", `{"Name":"web","Driver":"overlay"}`, http.StatusConflict, "network with name web already exists"},
		{"BridgeDriver", "POST", "/v1.47/networks/create", `{"Name":"x","Driver":"bridge"}`, http.StatusBadRequest, "only the overlay driver is supported in swarm scope"},
		{"UnknownDriver", "POST", "/v1.47/networks/create", `{"Name":"x","Driver":"weave"}`, http.StatusBadRequest, `network driver "weave" is not supported`},
		{"BadSubnet", "POST", "/v1.47/networks/create", `{"Name":"x","Driver":"overlay","IPAM":{"Config":[{"Subnet":"10.1.0.0/40"}]}}`, http.StatusBadRequest, "invalid subnet"},
		{"HostBits", "POST", "/v1.47/networks/create", `{"Name":"x","Driver":"overlay","IPAM":{"Config":[{"Subnet":"10.1.0.1/16"}]}}`, http.StatusBadRequest, "use 10.1.0.0/16"},
		{"OverlappingSubnet", "POST", "/v1.47/networks/create", `{"Name":"x","Driver":"overlay","IPAM":{"Config":[{"Subnet":"10.0.0.0/25"}]}}`, http.StatusConflict, "overlaps with subnet 10.0.0.0/24"},
		{"Predefined", "POST", "/v1.47/networks/create", `{"Name":"host","Driver":"overlay"}`, http.StatusForbidden, "pre-defined network"},
		{"SecondIngress", "POST", "/v1.47/networks/create", `{"Name":"x","Driver":"overlay","Ingress":true}`, http.StatusConflict, "ingress network (ingress"},
		{"RemoveIngressInUse", "DELETE", "/v1.47/networks/ingress", "", http.StatusBadRequest, "ingress network cannot be removed because service"},
		{"RemoveUnknown", "DELETE", "/v1.47/networks/nosuch", "", http.StatusNotFound, "network nosuch not found"},
		{"ServiceOnUnknownNetwork", "POST", "/v1.47/services/create", svcNet("nosuch"), http.StatusNotFound, "network nosuch not found"},
		{"ServiceOnIngress", "POST", "/v1.47/services/create", svcNet("ingress"), http.StatusBadRequest, `service cannot be explicitly attached to the ingress network "ingress"`},
		{"ServiceOnNetworkTwice", "POST", "/v1.47/services/create", svcNet("web", res.ID[:8]), http.StatusBadRequest, "network web is given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := rawRequest(t, follower, tc.method, tc.path, tc.body)
			var e struct{ Message string }
			_ = json.Unmarshal([]byte(body), &e)
			if code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("%s %s → %d %s; want %d mentioning %q", tc.method, tc.path, code, body, tc.code, tc.msg)
			}
		})
	}
	if after := networkNames(t, leader); !slices.Equal(before, after) {
		t.Errorf("refused requests changed the networks: %v → %v", before, after)
	}
	if sl, _ := leader.Client.ServiceList(reqCtx(t), client.ServiceListOptions{}); len(sl.Items) != 1 {
		t.Errorf("%d services, want only pub: a refused service was created", len(sl.Items))
	}

	// Removed through a follower; then it is gone everywhere.
	if _, err := follower.Client.NetworkRemove(reqCtx(t), "web", client.NetworkRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Client.NetworkInspect(reqCtx(t), res.ID, client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a removed network: %v, want not found", err)
	}

	// With no port through the mesh left, the ingress network can go, and
	// a new leader does not make it again.
	sl, _ := leader.Client.ServiceList(reqCtx(t), client.ServiceListOptions{})
	for _, s := range sl.Items {
		if _, err := leader.Client.ServiceRemove(reqCtx(t), s.ID, client.ServiceRemoveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := leader.Client.NetworkRemove(reqCtx(t), "ingress", client.NetworkRemoveOptions{}); err != nil {
		t.Fatalf("removing the unused ingress network: %v", err)
	}
	leader.Stop()
	next := c.Leader()
	if _, err := next.Client.NetworkCreate(reqCtx(t), "after", client.NetworkCreateOptions{Driver: "overlay"}); err != nil {
		t.Fatalf("create through the new leader %s: %v", next.Name, err)
	}
	if names := networkNames(t, next); !slices.Equal(names, []string{"after"}) {
		t.Errorf("after a change of leader the networks are %v, want only 'after' (a removed ingress is not made again)", names)
	}
	// The old leader, back, replays the log to the same networks.
	leader.Restart()
	networksAre(t, c, leader, "after")
}

// vipsByNetwork are a service's virtual IPs by network ID.
func vipsByNetwork(s swarm.Service) map[string]string {
	out := map[string]string{}
	for _, v := range s.Endpoint.VirtualIPs {
		out[v.NetworkID] = v.Addr.String()
	}
	return out
}

// liveAddrs are the addresses of a service's tasks that have not ended,
// checking that each names its network whole and that none is shared.
func liveAddrs(t *testing.T, c *testcluster.Cluster, via *testcluster.Node, svc, network string) ([]string, error) {
	tasks, err := serviceTasks(reqCtx(t), via, svc)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, tk := range tasks {
		if tk.Status.State == swarm.TaskStateShutdown || tk.Status.State == swarm.TaskStateFailed ||
			tk.Status.State == swarm.TaskStateComplete || tk.Status.State == swarm.TaskStateRejected {
			continue
		}
		for _, a := range tk.NetworksAttachments {
			if a.Network.ID != network {
				continue
			}
			if a.Network.Spec.Name == "" || a.Network.IPAMOptions == nil {
				return nil, fmt.Errorf("task %s shows network %s without its spec: %+v", tk.ID, a.Network.ID, a.Network)
			}
			for _, p := range a.Addresses {
				if slices.Contains(out, p.String()) {
					return nil, fmt.Errorf("address %s given twice: %s", p, describeTasks(c, tasks))
				}
				out = append(out, p.String())
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// TestServicesOnNetworks attaches services to networks through the API:
// names resolved to IDs, a VIP per network kept across updates and
// released when the network leaves, task addresses distinct and bounded
// by the subnet, the deprecated top-level Networks, dnsrr, and network
// removal refused while in use.
func TestServicesOnNetworks(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 1})
	leader := c.Leader()
	mkNet := func(name, subnet string) string {
		t.Helper()
		opts := client.NetworkCreateOptions{Driver: "overlay"}
		if subnet != "" {
			opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix(subnet)}}}
		}
		res, err := leader.Client.NetworkCreate(reqCtx(t), name, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	front := mkNet("front", "10.0.1.0/24")
	back := mkNet("back", "10.0.2.0/24")

	spec := replicated("app", 2)
	spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "front", Aliases: []string{"api"}}}
	app := createService(t, c, leader, spec)
	s := inspectService(t, leader, app)
	if n := s.Spec.TaskTemplate.Networks; len(n) != 1 || n[0].Target != front || !slices.Equal(n[0].Aliases, []string{"api"}) {
		t.Fatalf("stored networks %+v, want front's ID %s with the alias", n, front)
	}
	vip := vipsByNetwork(s)[front]
	if len(s.Endpoint.VirtualIPs) != 1 || vip != "10.0.1.2/24" {
		t.Fatalf("VIPs %+v, want 10.0.1.2/24 on front", s.Endpoint.VirtualIPs)
	}
	waitConverged(t, c, leader, app, 2, 20*time.Second)
	c.Eventually(10*time.Second, func() error {
		addrs, err := liveAddrs(t, c, leader, app, front)
		if err == nil && (len(addrs) != 2 || slices.Contains(addrs, vip)) {
			err = fmt.Errorf("task addresses %v: want two, not the VIP %s", addrs, vip)
		}
		return err
	})

	// In use: the network cannot go.
	if _, err := leader.Client.NetworkRemove(reqCtx(t), "front", client.NetworkRemoveOptions{}); err == nil || !strings.Contains(err.Error(), "in use by service app") {
		t.Fatalf("removing a network a service is on: %v", err)
	}

	// Adding back keeps front's VIP; removing front releases it.
	mustUpdateService(t, leader, app, func(s *swarm.ServiceSpec) {
		s.TaskTemplate.Networks = append(s.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: "back"})
	})
	s = inspectService(t, leader, app)
	if got := vipsByNetwork(s); len(got) != 2 || got[front] != vip || got[back] != "10.0.2.2/24" {
		t.Fatalf("VIPs after adding back: %v, want front's %s kept and 10.0.2.2/24 on back", got, vip)
	}
	mustUpdateService(t, leader, app, func(s *swarm.ServiceSpec) {
		s.TaskTemplate.Networks = slices.DeleteFunc(s.TaskTemplate.Networks, func(a swarm.NetworkAttachmentConfig) bool { return a.Target == front })
	})
	if got := vipsByNetwork(inspectService(t, leader, app)); len(got) != 1 || got[back] != "10.0.2.2/24" {
		t.Fatalf("VIPs after removing front: %v, want back's only", got)
	}
	// Once the tasks on front have ended, front can go.
	c.Eventually(20*time.Second, func() error {
		_, err := leader.Client.NetworkRemove(reqCtx(t), "front", client.NetworkRemoveOptions{})
		return err
	})

	// An older client's top-level Networks; dnsrr has no VIP.
	code, body := rawRequest(t, leader, "POST", "/v1.41/services/create",
		`{"Name":"old","Mode":{"Replicated":{"Replicas":0}},"TaskTemplate":{"ContainerSpec":{"Image":"fake"}},"Networks":[{"Target":"back"}],"EndpointSpec":{"Mode":"dnsrr"}}`)
	if code != http.StatusCreated {
		t.Fatalf("create with top-level Networks: %d %s", code, body)
	}
	old := inspectService(t, leader, "old")
	if n := old.Spec.TaskTemplate.Networks; len(n) != 1 || n[0].Target != back || len(old.Endpoint.VirtualIPs) != 0 {
		t.Errorf("old: networks %+v, VIPs %+v; want back and no VIP (dnsrr)", n, old.Endpoint.VirtualIPs)
	}

	// A /29 has five addresses: five VIPs, then a clear refusal.
	tiny := mkNet("tiny", "10.9.9.0/29")
	for i := range 5 {
		s := replicated(fmt.Sprintf("v%d", i), 0)
		s.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: tiny}}
		createService(t, c, leader, s)
	}
	s6 := replicated("v5", 0)
	s6.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "tiny"}}
	if _, err := leader.Client.ServiceCreate(reqCtx(t), client.ServiceCreateOptions{Spec: s6}); err == nil ||
		!strings.Contains(err.Error(), "no free address on network tiny (10.9.9.0/29)") {
		t.Fatalf("a sixth VIP on a /29: %v", err)
	}
	if _, err := leader.Client.ServiceInspect(reqCtx(t), "v5", client.ServiceInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("the refused service exists: %v", err)
	}

	// Seven dnsrr tasks on a /29: five get addresses, none shared.
	few := mkNet("few", "10.9.8.0/29")
	s7 := replicated("seven", 7)
	s7.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "few"}}
	s7.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	seven := createService(t, c, leader, s7)
	c.Eventually(10*time.Second, func() error {
		addrs, err := liveAddrs(t, c, leader, seven, few)
		if err == nil && len(addrs) != 5 {
			err = fmt.Errorf("%d task addresses on few: %v, want 5", len(addrs), addrs)
		}
		return err
	})
	consistently(t, time.Second, func() error {
		tasks, err := serviceTasks(reqCtx(t), leader, seven)
		if err == nil && len(tasks) != 5 {
			err = fmt.Errorf("%d tasks of seven, want 5 (no task without an address)", len(tasks))
		}
		return err
	})

	// After the service's removal the network can go.
	if _, err := leader.Client.ServiceRemove(reqCtx(t), app, client.ServiceRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Client.ServiceRemove(reqCtx(t), "old", client.ServiceRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Eventually(20*time.Second, func() error {
		_, err := leader.Client.NetworkRemove(reqCtx(t), "back", client.NetworkRemoveOptions{})
		return err
	})
}
