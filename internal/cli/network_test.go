package cli_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

func TestNetworkCreateSendsDockersRequest(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("POST /networks/create", http.StatusCreated, network.CreateResponse{ID: "newnet0000000000000000001"})
	r := mustRun(t, f.host, "network", "create", "--attachable", "--internal", "--subnet", "10.9.0.0/16",
		"--gateway", "10.9.0.254", "--ip-range", "10.9.1.0/24", "--label", "tier=back", "-o", "encrypted", "back")
	if strings.TrimSpace(r.stdout) != "newnet0000000000000000001" {
		t.Errorf("stdout = %q, want the ID", r.stdout)
	}
	req := decodeBody[network.CreateRequest](t, f.only("POST", "/networks/create")[0])
	c := req.IPAM.Config[0]
	if req.Name != "back" || req.Driver != "overlay" || !req.Attachable || !req.Internal || req.Labels["tier"] != "back" ||
		c.Subnet.String() != "10.9.0.0/16" || c.Gateway.String() != "10.9.0.254" || c.IPRange.String() != "10.9.1.0/24" {
		t.Errorf("request = %+v, ipam %+v", req, c)
	}
	if _, ok := req.Options["encrypted"]; !ok {
		t.Errorf("options = %v", req.Options)
	}

	// Bad flags are caught before any request.
	for _, args := range [][]string{
		{"network", "create", "--subnet", "10.9.0.0", "x"},
		{"network", "create", "--gateway", "10.9.0.1", "x"},
		{"network", "create", "--subnet", "10.9.0.0/16", "--gateway", "10.8.0.1", "x"},
	} {
		if r := run(t, f.host, args...); r.err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
	if n := len(f.only("POST", "/networks/create")); n != 1 {
		t.Errorf("%d create requests, want 1", n)
	}
	// The daemon's refusal reaches the user.
	f.fail("POST /networks/create", http.StatusBadRequest, `network driver "bridge" is not supported: only the overlay driver is supported in swarm scope`)
	r = run(t, f.host, "network", "create", "-d", "bridge", "x")
	if r.err == nil || !strings.Contains(r.stderr, "only the overlay driver") {
		t.Errorf("bridge: %v, stderr %q", r.err, r.stderr)
	}
}

func fakeNetworks() []network.Summary {
	mk := func(id, name string, ingress bool) network.Summary {
		return network.Summary{Network: network.Network{ID: id, Name: name, Driver: "overlay", Scope: "swarm", EnableIPv4: true, Ingress: ingress,
			Labels: map[string]string{"k": "v"},
			IPAM:   network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/24")}}}}}
	}
	return []network.Summary{mk("web0000000000000000000001", "web", false), mk("ing0000000000000000000001", "ingress", true)}
}

func TestNetworkLsInspectRm(t *testing.T) {
	f := newFakeAPI(t)
	nets := fakeNetworks()
	f.reply("GET /networks", http.StatusOK, nets)
	r := mustRun(t, f.host, "network", "ls")
	want := "NETWORK ID     NAME      DRIVER    SCOPE\ning000000000   ingress   overlay   swarm\nweb000000000   web       overlay   swarm\n"
	if r.stdout != want {
		t.Errorf("network ls:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = mustRun(t, f.host, "network", "ls", "-q", "--no-trunc", "-f", "driver=overlay")
	if r.stdout != "ing0000000000000000000001\nweb0000000000000000000001\n" {
		t.Errorf("network ls -q --no-trunc: %q", r.stdout)
	}
	if q := f.only("GET", "/networks")[1].Query.Get("filters"); !strings.Contains(q, `"driver":{"overlay":true}`) {
		t.Errorf("filters sent = %s", q)
	}

	f.reply("GET /networks/web", http.StatusOK, network.Inspect{Network: nets[0].Network})
	r = mustRun(t, f.host, "network", "inspect", "web")
	var got []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1 || got[0]["Name"] != "web" {
		t.Errorf("network inspect: %v %s", err, r.stdout)
	}
	r = mustRun(t, f.host, "network", "inspect", "-f", "{{.Name}} {{.Scope}} {{.Driver}}", "web")
	if r.stdout != "web swarm overlay\n" {
		t.Errorf("network inspect -f: %q", r.stdout)
	}

	f.handle("DELETE /networks/web", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	f.fail("DELETE /networks/ingress", http.StatusConflict, "ingress network cannot be removed because service s1 depends on it")
	f.fail("DELETE /networks/gone", http.StatusNotFound, "network gone not found")
	r = run(t, f.host, "network", "rm", "web", "ingress")
	if r.err == nil || r.stdout != "web\n" || !strings.Contains(r.stderr, "ingress network cannot be removed because service s1 depends on it") {
		t.Errorf("network rm: %v\nstdout %q\nstderr %q", r.err, r.stdout, r.stderr)
	}
	if r := run(t, f.host, "network", "rm", "-f", "gone"); r.err != nil {
		t.Errorf("network rm -f of a missing network: %v %s", r.err, r.stderr)
	}
	if r := run(t, f.host, "network", "rm", "gone"); r.err == nil || !strings.Contains(r.stderr, "network gone not found") {
		t.Errorf("network rm of a missing network: %v %s", r.err, r.stderr)
	}
}
