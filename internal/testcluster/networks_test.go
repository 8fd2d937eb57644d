package testcluster_test

import (
	"encoding/json"
	"fmt"
	"net/http"
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

	svcNet := func(target string) string {
		s := replicated("onnet", 1)
		s.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: target}}
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
		{"RemoveIngressInUse", "DELETE", "/v1.47/networks/ingress", "", http.StatusConflict, "ingress network cannot be removed because service"},
		{"RemoveUnknown", "DELETE", "/v1.47/networks/nosuch", "", http.StatusNotFound, "network nosuch not found"},
		{"ServiceOnUnknownNetwork", "POST", "/v1.47/services/create", svcNet("nosuch"), http.StatusNotFound, "network nosuch not found"},
		{"ServiceOnNetwork", "POST", "/v1.47/services/create", svcNet("web"), http.StatusBadRequest, "attaching services to networks is not supported yet"},
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
