package engineapi

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

const (
	netWeb  = "netweb0000000000000000001"
	netBack = "netbck0000000000000000002"
	netIn   = "netin00000000000000000003"
)

func fakeNet(id, name string, f func(*swarm.Network)) swarm.Network {
	n := swarm.Network{ID: id, Meta: swarm.Meta{CreatedAt: epoch},
		Spec:        swarm.NetworkSpec{Annotations: swarm.Annotations{Name: name}, DriverConfiguration: &swarm.Driver{Name: "overlay"}, Scope: "swarm"},
		DriverState: swarm.Driver{Name: "overlay"},
		IPAMOptions: &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"}, Configs: []swarm.IPAMConfig{{
			Subnet: netip.MustParsePrefix("10.0.9.0/24"), Gateway: netip.MustParseAddr("10.0.9.1")}}},
	}
	if f != nil {
		f(&n)
	}
	return n
}

func networksCluster() *fakeBackend {
	f := newFakeCluster()
	f.networks = []swarm.Network{
		fakeNet(netWeb, "web", func(n *swarm.Network) { n.Spec.Labels = map[string]string{"tier": "front"}; n.Spec.Attachable = true }),
		fakeNet(netBack, "back", func(n *swarm.Network) { n.Spec.Internal = true }),
		fakeNet(netIn, "ingress", func(n *swarm.Network) { n.Spec.Ingress = true }),
	}
	return f
}

// POST /networks/create takes the docker CLI's body (with fields of
// other API versions, such as CheckDuplicate) and answers 201 {Id, Warning}.
func TestNetworkCreate(t *testing.T) {
	f := newFakeCluster()
	body := `{"Name":"web","CheckDuplicate":true,"Driver":"overlay","Scope":"","Attachable":true,"Internal":true,
		"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.7.0.0/16","IPRange":"10.7.1.0/24","Gateway":"10.7.0.254"}]},
		"Options":{"encrypted":""},"Labels":{"a":"b"}}`
	rec := serve(t, NewHandler(f), "POST", "/v1.47/networks/create", body)
	wantStatus(t, rec, 201)
	var resp map[string]any
	decodeJSON(t, rec, &resp)
	if resp["Id"] == "" || len(resp) != 2 || resp["Warning"] != "" {
		t.Errorf("answer = %v, want {Id, Warning: \"\"}", resp)
	}
	if len(f.networks) != 1 {
		t.Fatalf("networks = %v", f.networks)
	}
	s := f.networks[0].Spec
	c := s.IPAMOptions.Configs[0]
	if s.Name != "web" || s.DriverConfiguration.Name != "overlay" || !s.Attachable || !s.Internal || s.Labels["a"] != "b" ||
		s.DriverConfiguration.Options["encrypted"] != "" || len(s.DriverConfiguration.Options) != 1 ||
		c.Subnet.String() != "10.7.0.0/16" || c.Range.String() != "10.7.1.0/24" || c.Gateway.String() != "10.7.0.254" {
		t.Errorf("spec = %+v, ipam %+v", s, c)
	}

	// A taken name is the backend's 409.
	rec = serve(t, NewHandler(f), "POST", "/v1.47/networks/create", `{"Name":"web","Driver":"overlay"}`)
	wantStatus(t, rec, 409)
}

func TestNetworkCreateRefused(t *testing.T) {
	for _, tc := range []struct{ body, msg string }{
		{`{"Driver":"overlay"}`, "a network needs a name"},
		{`{"Name":"x","IPAM":{"Config":[{"Subnet":"10.0.0.0/33"}]}}`, `invalid subnet "10.0.0.0/33"`},
		{`{"Name":"x","IPAM":{"Config":[{"Subnet":"nonsense"}]}}`, `invalid subnet "nonsense"`},
		{`{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","Gateway":"10.1.0.x"}]}}`, `invalid gateway "10.1.0.x"`},
		{`{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","IPRange":"bad"}]}}`, `invalid ip range "bad"`},
		{`{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/16","AuxiliaryAddresses":{"h":"10.1.0.5"}}]}}`, "--aux-address"},
		{`{"Name":"x","ConfigOnly":true}`, "config-only"},
		{`{"Name":"x","EnableIPv4":false}`, "IPv4 cannot be disabled"},
	} {
		f := newFakeCluster()
		rec := serve(t, NewHandler(f), "POST", "/v1.47/networks/create", tc.body)
		wantStatus(t, rec, 400)
		if msg := errorMessage(t, rec); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: message %q, want %q", tc.body, msg, tc.msg)
		}
		if len(f.networks) != 0 {
			t.Errorf("%s: a refused request created a network", tc.body)
		}
	}
}

// A swarm network looks as dockerd shows it: scope swarm, {} rather than
// null for labels and options, the allocated subnet in IPAM.
func TestNetworkInspectShape(t *testing.T) {
	f := networksCluster()
	rec := serve(t, NewHandler(f), "GET", "/v1.47/networks/web", "")
	wantStatus(t, rec, 200)
	var got map[string]json.RawMessage
	decodeJSON(t, rec, &got)
	for k, want := range map[string]string{
		"Name": `"web"`, "Id": `"` + netWeb + `"`, "Scope": `"swarm"`, "Driver": `"overlay"`, "EnableIPv4": "true",
		"EnableIPv6": "false", "Internal": "false", "Attachable": "true", "Ingress": "false", "ConfigOnly": "false",
		"ConfigFrom": `{"Network":""}`, "Options": "{}", "Labels": `{"tier":"front"}`, "Containers": "null",
		"IPAM": `{"Driver":"default","Options":null,"Config":[{"Subnet":"10.0.9.0/24","Gateway":"10.0.9.1"}]}`,
	} {
		if string(got[k]) != want {
			t.Errorf("%s = %s, want %s", k, got[k], want)
		}
	}
	if _, ok := got["Created"]; !ok {
		t.Error("no Created")
	}
}

func TestNetworkResolution(t *testing.T) {
	f := networksCluster()
	f.networks = append(f.networks, fakeNet("netweb0000000000000000999", "other", nil))
	for _, tc := range []refCase{
		{ref: netBack, wantID: netBack},
		{ref: "back", wantID: netBack},
		{ref: "netin", wantID: netIn},
		{ref: "netweb", code: 400, msg: "network netweb is ambiguous (2 matches found)"},
		{ref: "nosuch", code: 404, msg: "network nosuch not found"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			rec := serve(t, NewHandler(f), "GET", "/v1.47/networks/"+tc.ref, "")
			wantResolved(t, rec, tc.code, tc.msg, tc.wantID)
		})
	}
	// Another scope than swarm is a network not found, as dockerd.
	wantStatus(t, serve(t, NewHandler(f), "GET", "/v1.47/networks/web?scope=local", ""), 404)
	wantStatus(t, serve(t, NewHandler(f), "GET", "/v1.47/networks/web?scope=swarm&verbose=false", ""), 200)
}

func TestNetworkListFilters(t *testing.T) {
	f := networksCluster()
	list := func(filters string) []string {
		t.Helper()
		target := "/v1.47/networks"
		if filters != "" {
			target += "?filters=" + filters
		}
		rec := serve(t, NewHandler(f), "GET", target, "")
		wantStatus(t, rec, 200)
		var out []struct{ Name string }
		decodeJSON(t, rec, &out)
		names := []string{}
		for _, n := range out {
			names = append(names, n.Name)
		}
		return names
	}
	for filters, want := range map[string][]string{
		"":                              {"back", "ingress", "web"},
		`{"name":{"e":true}}`:           {"ingress", "web"}, // a pattern found anywhere, as dockerd
		`{"name":{"^web$":true}}`:       {"web"},
		`{"id":{"netb":true}}`:          {"back"},
		`{"label":{"tier=front":true}}`: {"web"},
		`{"label":{"tier":true}}`:       {"web"},
		`{"driver":{"overlay":true}}`:   {"back", "ingress", "web"},
		`{"driver":{"bridge":true}}`:    {},
		`{"scope":{"swarm":true}}`:      {"back", "ingress", "web"},
		`{"scope":{"local":true}}`:      {},
		`{"type":{"custom":true}}`:      {"back", "ingress", "web"},
		`{"type":{"builtin":true}}`:     {},
		`{"dangling":{"true":true}}`:    {"back", "ingress", "web"},
		`{"name":{"[":true}}`:           {}, // not a pattern: plain text
		`{"name":["web"]}`:              {"web"},
	} {
		if got := list(filters); !slices.Equal(got, want) {
			t.Errorf("filters %s: %v, want %v", filters, got, want)
		}
	}
	for filters, msg := range map[string]string{
		`{"type":{"weird":true}}`:     "invalid filter: 'type'='weird'",
		`{"mode":{"x":true}}`:         "invalid filter 'mode'",
		`{"dangling":{"maybe":true}}`: "invalid filter 'dangling=maybe'",
	} {
		rec := serve(t, NewHandler(f), "GET", "/v1.47/networks?filters="+filters, "")
		wantStatus(t, rec, 400)
		if got := errorMessage(t, rec); got != msg {
			t.Errorf("filters %s: %q, want %q", filters, got, msg)
		}
	}
}

func TestNetworkRemove(t *testing.T) {
	f := networksCluster()
	rec := serve(t, NewHandler(f), "DELETE", "/v1.47/networks/back", "")
	wantStatus(t, rec, 204)
	if !slices.Equal(f.nremoved, []string{netBack}) {
		t.Errorf("removed %v, want the full ID %s", f.nremoved, netBack)
	}
	rec = serve(t, NewHandler(f), "DELETE", "/v1.47/networks/back", "")
	wantStatus(t, rec, 404)
	if msg := errorMessage(t, rec); msg != "network back not found" {
		t.Errorf("message = %q", msg)
	}
	rec = serve(t, NewHandler(f), "POST", "/v1.47/networks/web/connect", `{"Container":"c1"}`)
	wantStatus(t, rec, 400)
}

// The docker CLI's network commands work against the API.
func TestDockerCLINetworks(t *testing.T) {
	needDocker(t)
	f := networksCluster()
	s := startCLIServer(t, f)
	id := strings.TrimSpace(s.ok("network", "create", "-d", "overlay", "--attachable", "--internal", "--subnet", "10.9.0.0/24", "--label", "k=v", "app"))
	if len(f.networks) != 4 || f.networks[3].ID != id {
		t.Fatalf("create printed %q; networks %v", id, f.networks)
	}
	spec := f.networks[3].Spec
	if !spec.Attachable || !spec.Internal || spec.Labels["k"] != "v" || spec.IPAMOptions.Configs[0].Subnet.String() != "10.9.0.0/24" {
		t.Errorf("spec sent by the docker CLI = %+v", spec)
	}
	ls := s.ok("network", "ls")
	wantContains(t, "network ls", ls, "NETWORK ID", id[:12], "app", "overlay", "swarm", "ingress")
	if q := lines(s.ok("network", "ls", "-q", "--filter", "name=app")); !slices.Equal(q, []string{id[:12]}) {
		t.Errorf("network ls -q --filter name=app = %v", q)
	}
	var got []struct {
		Name, Scope, Driver string
		Attachable          bool
		IPAM                struct{ Config []struct{ Subnet string } }
	}
	if err := json.Unmarshal([]byte(s.ok("network", "inspect", "app")), &got); err != nil || len(got) != 1 {
		t.Fatalf("network inspect: %v %v", got, err)
	}
	if g := got[0]; g.Name != "app" || g.Scope != "swarm" || g.Driver != "overlay" || !g.Attachable || g.IPAM.Config[0].Subnet != "10.9.0.0/24" {
		t.Errorf("network inspect = %+v", g)
	}
	if out := s.ok("network", "inspect", "-f", "{{.Name}} {{.Scope}}", id[:8]); strings.TrimSpace(out) != "app swarm" {
		t.Errorf("network inspect by ID prefix: %q", out)
	}
	wantContains(t, "network rm", s.ok("network", "rm", "app"), "app")
	wantContains(t, "network inspect of a removed network", s.fails("network", "inspect", "app"), "network app not found")
}
