package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The real engine's socket: the conformance run is the one place a test
// talks to it in swarm mode, and it always leaves that swarm.
const realEngineSock = "/var/run/docker.sock"

// conformanceAllow lists the intended differences from Docker's answers,
// each with the reason. Keep it short: anything else is a bug to fix.
var conformanceAllow = map[string]string{
	// The API types flotilla speaks (moby/api v1.56) always send
	// "Warnings" (null when none); the 20.10 engine here omits it.
	"Warnings": "a difference between Docker versions, not flotilla's",
	// Docker answers a stale version with 500 and a raw gRPC text
	// ("rpc error: code = Unknown desc = update out of sequence");
	// flotilla answers 409 and says what to do. Both carry {"message"}.
	"status of a stale update": "409 with a clear message instead of Docker's 500",
	// Docker fills its own defaults into a stored spec (Isolation
	// "default", Runtime "container"); flotilla stores what was sent.
	"Spec.TaskTemplate.ContainerSpec.Isolation":    "docker's default value, not stored by flotilla",
	"Spec.TaskTemplate.Runtime":                    "docker's default value, not stored by flotilla",
	"[].Spec.TaskTemplate.ContainerSpec.Isolation": "as above, in lists",
	"[].Spec.TaskTemplate.Runtime":                 "as above, in lists",
	// Networks. EnableIPv4 came with API 1.47, after the 20.10 engine;
	// list items of the API types flotilla speaks have no Containers.
	"EnableIPv4":        "a difference between Docker versions, not flotilla's",
	"[].EnableIPv4":     "as above, in lists",
	"[].Containers":     "a difference between Docker versions: newer list items have none",
	"Containers":        "only the ingress network differs: the engine lists its own ingress-sbox endpoint; flotilla nodes have none",
	"Peers":             "the overlay driver's peer nodes; flotilla has no VXLAN overlay",
	"[].Peers":          "as above, in lists",
	vxlanOption:         "the overlay driver's VXLAN ID; flotilla has no VXLAN overlay",
	"[]." + vxlanOption: "as above, in lists",
	// The 20.10 engine answers a service on an unknown network with 500
	// (an internal error for the client's mistake); flotilla says 404,
	// as for every unknown object, with Docker's message.
	"status of a service on an unknown network": "404 instead of Docker's 500",
}

const vxlanOption = "Options.com.docker.network.driver.overlay.vxlanid_list"

// TestConformance issues the same requests to the machine's Docker Engine
// in swarm mode and to a flotilla swarm, and compares the JSON shapes of
// the answers and the status codes. It changes the real engine (swarm
// init, then leave), so it runs only through scripts/conformance.sh.
func TestConformance(t *testing.T) {
	requireE2E(t)
	if os.Getenv("FLOTILLA_CONFORMANCE") != "1" {
		t.Skip("compares with the real Docker Engine in swarm mode; run scripts/conformance.sh (it always leaves that swarm)")
	}
	docker := func(args ...string) (string, error) {
		cmd := exec.Command("docker", args...)
		cmd.Env = cleanEnv([]string{"DOCKER_HOST=unix://" + realEngineSock})
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if st, err := docker("info", "--format", "{{.Swarm.LocalNodeState}}"); err != nil || st != "inactive" {
		t.Fatalf("the real engine must be outside any swarm to start (state %q, %v): this test never leaves a swarm it did not create", st, err)
	}
	if out, err := docker("swarm", "init", "--advertise-addr", "127.0.0.1"); err != nil {
		t.Fatalf("docker swarm init: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := docker("swarm", "leave", "--force"); err != nil {
			t.Errorf("docker swarm leave --force: %v\n%s", err, out)
		}
	})
	c := processCluster(t, 1, 0)
	fl := c.managers[0]

	type answer struct {
		code int
		body any
	}
	ask := func(sock, method, path string, body any) answer {
		t.Helper()
		code, b, err := socketRequest(sock, method, path, body)
		if err != nil {
			t.Fatalf("%s %s on %s: %v", method, path, sock, err)
		}
		var v any
		if len(b) > 0 {
			v = decodeJSON(t, b)
		}
		return answer{code, v}
	}
	var failures []string
	compare := func(what string, d, f answer, pick func(any) any) {
		t.Helper()
		if d.code != f.code && conformanceAllow["status of "+what] == "" {
			failures = append(failures, fmt.Sprintf("%s: docker answers %d, flotilla %d", what, d.code, f.code))
		}
		if pick != nil {
			d.body, f.body = pick(d.body), pick(f.body)
		}
		for _, diff := range allowed(shapeDiff("", d.body, f.body), conformanceAllow) {
			failures = append(failures, what+": "+diff)
		}
	}
	both := func(what, method, dpath, fpath string, body any, pick func(any) any) (answer, answer) {
		t.Helper()
		d := ask(realEngineSock, method, "/v1.41"+dpath, body)
		f := ask(fl.sock, method, "/v1.41"+fpath, body)
		compare(what, d, f, pick)
		return d, f
	}
	swarmPart := func(v any) any { m, _ := v.(map[string]any); return m["Swarm"] }
	idOf := func(a answer) string {
		if l, ok := a.body.([]any); ok && len(l) > 0 {
			a.body = l[0]
		}
		m, _ := a.body.(map[string]any)
		s, _ := m["ID"].(string)
		return s
	}

	both("GET /info", http.MethodGet, "/info", "/info", nil, swarmPart)
	both("GET /swarm", http.MethodGet, "/swarm", "/swarm", nil, nil)
	dn, fn := both("GET /nodes", http.MethodGet, "/nodes", "/nodes", nil, nil)
	both("GET /nodes/ID", http.MethodGet, "/nodes/"+idOf(dn), "/nodes/"+idOf(fn), nil, nil)
	spec := map[string]any{"Name": "conformance", "Mode": map[string]any{"Replicated": map[string]any{"Replicas": 0}},
		"TaskTemplate": map[string]any{"ContainerSpec": map[string]any{"Image": "conformance-image:latest",
			"Labels": map[string]string{"com.flotilla.driver": "process"}}}}
	dc, fc := both("POST /services/create", http.MethodPost, "/services/create", "/services/create", spec, nil)
	ds, fs := idOf(dc), idOf(fc)
	t.Cleanup(func() { _, _, _ = socketRequest(realEngineSock, http.MethodDelete, "/v1.41/services/"+ds, nil) })
	both("GET /services", http.MethodGet, "/services", "/services", nil, nil)
	both("GET /services/ID", http.MethodGet, "/services/"+ds, "/services/"+fs, nil, nil)
	both("GET /tasks", http.MethodGet, "/tasks", "/tasks", nil, nil)
	both("GET /nodes/unknown", http.MethodGet, "/nodes/nosuchnode", "/nodes/nosuchnode", nil, nil)
	both("GET /services/unknown", http.MethodGet, "/services/nosuchservice", "/services/nosuchservice", nil, nil)
	both("DELETE /services/unknown", http.MethodDelete, "/services/nosuchservice", "/services/nosuchservice", nil, nil)
	both("a stale update", http.MethodPost, "/services/"+ds+"/update?version=1", "/services/"+fs+"/update?version=1", spec, nil)
	nodeSpec := map[string]any{"Role": "manager", "Availability": "active"}
	conformanceAllow["status of a stale node update"] = conformanceAllow["status of a stale update"]
	both("a stale node update", http.MethodPost, "/nodes/"+idOf(dn)+"/update?version=1", "/nodes/"+idOf(fn)+"/update?version=1", nodeSpec, nil)
	both("DELETE /services/ID", http.MethodDelete, "/services/"+ds, "/services/"+fs, nil, nil)

	// A published port: Endpoint as Docker shows it.
	port := freePort(t)
	pub := map[string]any{"Name": "conformance-published", "Mode": map[string]any{"Replicated": map[string]any{"Replicas": 0}},
		"TaskTemplate": spec["TaskTemplate"],
		"EndpointSpec": map[string]any{"Ports": []map[string]any{{"TargetPort": 80, "PublishedPort": port}}}}
	dc, fc = both("POST /services/create published", http.MethodPost, "/services/create", "/services/create", pub, nil)
	dp, fp := idOf(dc), idOf(fc)
	t.Cleanup(func() { _, _, _ = socketRequest(realEngineSock, http.MethodDelete, "/v1.41/services/"+dp, nil) })
	// Docker's allocator fills Endpoint a moment after the create.
	eventually(t, 10*time.Second, func() error {
		_, b, err := socketRequest(realEngineSock, http.MethodGet, "/v1.41/services/"+dp, nil)
		if err != nil || !bytes.Contains(b, []byte(`"VirtualIPs"`)) {
			return fmt.Errorf("docker has not allocated the published service's endpoint yet (%v)", err)
		}
		return nil
	})
	both("GET /services/ID published", http.MethodGet, "/services/"+dp, "/services/"+fp, nil, nil)
	both("a port already published", http.MethodPost, "/services/create", "/services/create",
		map[string]any{"Name": "conformance-taken", "TaskTemplate": spec["TaskTemplate"], "EndpointSpec": pub["EndpointSpec"]}, nil)
	both("DELETE /services/ID published", http.MethodDelete, "/services/"+dp, "/services/"+fp, nil, nil)

	// Networks: lists of one network each, so the first items compared
	// are the same network (the engine also lists its local bridge, host
	// and none, which flotilla has not, in no set order).
	netID := func(a answer) string { m, _ := a.body.(map[string]any); s, _ := m["Id"].(string); return s }
	named := func(name string) string {
		return "/networks?filters=" + url.QueryEscape(`{"driver":{"overlay":true},"name":{"^`+name+`$":true}}`)
	}
	netSpec := map[string]any{"Name": "conformance-net", "Driver": "overlay", "Attachable": true, "Labels": map[string]string{"k": "v"}}
	dnc, fnc := both("POST /networks/create", http.MethodPost, "/networks/create", "/networks/create", netSpec, nil)
	dn2, fn2 := netID(dnc), netID(fnc)
	t.Cleanup(func() { _, _, _ = socketRequest(realEngineSock, http.MethodDelete, "/v1.41/networks/"+dn2, nil) })
	both("GET /networks (the new one)", http.MethodGet, named("conformance-net"), named("conformance-net"), nil, nil)
	both("GET /networks (ingress)", http.MethodGet, named("ingress"), named("ingress"), nil, nil)
	both("GET /networks/ID", http.MethodGet, "/networks/"+dn2, "/networks/"+fn2, nil, nil)
	both("GET /networks/ingress", http.MethodGet, "/networks/ingress", "/networks/ingress", nil, nil)
	both("GET /networks/unknown", http.MethodGet, "/networks/nosuchnetwork", "/networks/nosuchnetwork", nil, nil)
	both("a duplicate network name", http.MethodPost, "/networks/create", "/networks/create", netSpec, nil)
	both("DELETE /networks/unknown", http.MethodDelete, "/networks/nosuchnetwork", "/networks/nosuchnetwork", nil, nil)

	// A service on the network (by name): its spec names the network's
	// ID and it has a VIP on it; a network in use is not removed; an
	// unknown network and the ingress network named are refused.
	onNet := func(name, network string) map[string]any {
		return map[string]any{"Name": name, "Mode": map[string]any{"Replicated": map[string]any{"Replicas": 0}},
			"TaskTemplate": map[string]any{"ContainerSpec": spec["TaskTemplate"].(map[string]any)["ContainerSpec"],
				"Networks": []map[string]any{{"Target": network}}}}
	}
	dc, fc = both("POST /services/create on a network", http.MethodPost, "/services/create", "/services/create", onNet("conformance-onnet", "conformance-net"), nil)
	dsn, fsn := idOf(dc), idOf(fc)
	t.Cleanup(func() { _, _, _ = socketRequest(realEngineSock, http.MethodDelete, "/v1.41/services/"+dsn, nil) })
	eventually(t, 10*time.Second, func() error {
		_, b, err := socketRequest(realEngineSock, http.MethodGet, "/v1.41/services/"+dsn, nil)
		if err != nil || !bytes.Contains(b, []byte(`"VirtualIPs"`)) {
			return fmt.Errorf("docker has not allocated the service's VIP yet (%v)", err)
		}
		return nil
	})
	both("GET /services/ID on a network", http.MethodGet, "/services/"+dsn, "/services/"+fsn, nil, nil)
	both("DELETE /networks/ID in use", http.MethodDelete, "/networks/"+dn2, "/networks/"+fn2, nil, nil)
	both("a service on an unknown network", http.MethodPost, "/services/create", "/services/create", onNet("conformance-nonet", "nosuchnetwork"), nil)
	both("a service on the ingress network", http.MethodPost, "/services/create", "/services/create", onNet("conformance-ingress", "ingress"), nil)
	both("DELETE /services/ID on a network", http.MethodDelete, "/services/"+dsn, "/services/"+fsn, nil, nil)
	// Docker frees the network a moment after the service goes.
	eventually(t, 10*time.Second, func() error {
		st, b, err := socketRequest(realEngineSock, http.MethodDelete, "/v1.41/networks/"+dn2, nil)
		if err != nil || st != http.StatusNoContent {
			return fmt.Errorf("docker still holds its network: %d %s %v", st, b, err)
		}
		return nil
	})
	if st, b, err := socketRequest(fl.sock, http.MethodDelete, "/v1.41/networks/"+fn2, nil); err != nil || st != http.StatusNoContent {
		failures = append(failures, fmt.Sprintf("DELETE /networks/ID: flotilla answered %d %s %v", st, b, err))
	}

	for _, f := range failures {
		t.Error(f)
	}
}
