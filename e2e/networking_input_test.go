package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
)

// TestNetworkingBadInput sends the networking issue's bad input through
// the real binary's Engine API: each is refused with a clear message and
// nothing changes.
func TestNetworkingBadInput(t *testing.T) {
	requireE2E(t)
	c := newClusterArgs(t, 1, 0, "--no-docker")
	m1 := c.managers[0]
	post := func(path string, body any) (int, string) {
		t.Helper()
		status, b, err := m1.apiRequest(http.MethodPost, path, body)
		if err != nil {
			t.Fatal(err)
		}
		return status, string(b)
	}
	expect := func(what string, status int, body string, wantStatus int, want string) {
		t.Helper()
		if status != wantStatus || !strings.Contains(body, want) {
			t.Errorf("%s: %d %s; want %d and a message saying %q", what, status, body, wantStatus, want)
		}
	}
	spec := func(name string) swarm.ServiceSpec {
		return swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "/bin/sleep", Args: []string{"1000"},
				Labels: map[string]string{"com.flotilla.driver": "process"}}}}
	}
	withPort := func(name string, published, target uint32) swarm.ServiceSpec {
		s := spec(name)
		s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{PublishedPort: published, TargetPort: target}}}
		return s
	}
	port := uint32(freePort(t))
	if status, body := post("/services/create", withPort("holder", port, 80)); status != http.StatusCreated {
		t.Fatalf("create holder: %d %s", status, body)
	}
	if status, body := post("/networks/create", map[string]any{"Name": "used", "Driver": "overlay"}); status != http.StatusCreated {
		t.Fatalf("create network: %d %s", status, body)
	}
	onUsed := spec("user")
	onUsed.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "used"}}
	if status, body := post("/services/create", onUsed); status != http.StatusCreated {
		t.Fatalf("create user: %d %s", status, body)
	}

	status, body := post("/services/create", withPort("bad1", 70000, 80))
	expect("published port 70000", status, body, http.StatusBadRequest, "invalid published port 70000")
	status, body = post("/services/create", withPort("bad2", 8080, 0))
	expect("target port 0", status, body, http.StatusBadRequest, "invalid target port 0")
	status, body = post("/services/create", withPort("bad3", port, 81))
	expect("a port already taken", status, body, http.StatusBadRequest, "already in use by service 'holder'")
	unknown := spec("bad4")
	unknown.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "nosuchnet"}}
	status, body = post("/services/create", unknown)
	expect("an unknown network", status, body, http.StatusNotFound, "network nosuchnet not found")
	health := spec("bad5")
	health.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 500 * time.Microsecond}
	status, body = post("/services/create", health)
	expect("an invalid health interval", status, body, http.StatusBadRequest, "cannot be less than 1ms")
	st, b, err := m1.apiRequest(http.MethodDelete, "/networks/used", nil)
	if err != nil {
		t.Fatal(err)
	}
	expect("removing a network in use", st, string(b), http.StatusBadRequest, "network used is in use by service user")

	out := m1.mustCLI(t, "service", "ls", "--format", "{{.Name}}")
	if got := strings.Fields(out); len(got) != 2 {
		t.Errorf("after the refusals, services %v; want holder and user only", got)
	}
	if out := m1.mustCLI(t, "network", "ls", "--format", "{{.Name}}"); !strings.Contains(out, "used") {
		t.Errorf("the network in use is gone:\n%s", out)
	}
}
