package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDockerNetworks drives the networks API with the unmodified docker
// CLI (network create/ls/inspect/rm), through a follower so the writes
// are forwarded to the leader, and checks that bad input is refused with
// Docker's messages and changes nothing.
func TestDockerNetworks(t *testing.T) {
	requireE2E(t)
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not on PATH; this test checks that it works as a flotilla client")
	}
	config := tempDir(t)
	c := newCluster(t, 2, 0)
	leader := c.mustLeader(c.managers[0])
	via := c.otherManagers(leader)[0]
	docker := func(args ...string) cliResult {
		env := cleanEnv([]string{"DOCKER_HOST=" + via.host(), "DOCKER_CONFIG=" + config})
		return run(cliTimeout, env, dockerBin, args...)
	}
	must := func(args ...string) string {
		t.Helper()
		r := docker(args...)
		if r.err != nil {
			t.Fatalf("docker %s: %v\nstdout: %s", strings.Join(args, " "), r.err, r.stdout)
		}
		return r.stdout
	}
	refused := func(want string, args ...string) {
		t.Helper()
		r := docker(args...)
		if r.err == nil || !strings.Contains(r.err.Error(), want) {
			t.Errorf("docker %s: %v; want a refusal mentioning %q", strings.Join(args, " "), r.err, want)
		}
	}

	out := must("network", "ls")
	if !strings.Contains(out, "NETWORK ID") || !strings.Contains(out, "ingress") || !strings.Contains(out, "overlay") || !strings.Contains(out, "swarm") {
		t.Errorf("docker network ls on a new swarm:\n%s", out)
	}

	id := strings.TrimSpace(must("network", "create", "-d", "overlay", "--attachable", "--internal",
		"--subnet", "10.20.0.0/24", "--label", "tier=back", "app"))
	if len(id) != 25 {
		t.Fatalf("docker network create printed %q, want the network ID", id)
	}
	if q := strings.TrimSpace(must("network", "ls", "-q", "--filter", "name=app")); q != id[:12] {
		t.Errorf("docker network ls -q --filter name=app = %q, want %s", q, id[:12])
	}
	got := strings.TrimSpace(must("network", "inspect", "--format",
		"{{.Name}} {{.Driver}} {{.Scope}} {{.Attachable}} {{.Internal}} {{.Labels.tier}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}", id[:8]))
	if want := "app overlay swarm true true back 10.20.0.0/24 10.20.0.1"; got != want {
		t.Errorf("docker network inspect = %q, want %q", got, want)
	}
	if got := strings.TrimSpace(must("network", "inspect", "--format", "{{.Ingress}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", "ingress")); got != "true 10.0.0.0/24" {
		t.Errorf("the ingress network: %q", got)
	}

	refused("network with name app already exists", "network", "create", "-d", "overlay", "app")
	refused("only the overlay driver is supported in swarm scope", "network", "create", "plain") // docker's default: bridge
	refused("overlaps with subnet 10.20.0.0/24", "network", "create", "-d", "overlay", "--subnet", "10.20.0.0/16", "wide")
	refused("invalid subnet", "network", "create", "-d", "overlay", "--subnet", "10.30.0.7/24", "hostbits")
	refused("service cannot be explicitly attached to the ingress network", "service", "create", "--network", "ingress",
		"--container-label", "com.flotilla.driver=process", "sleep", "1000")
	refused("network nosuch not found", "service", "create", "--network", "nosuch",
		"--container-label", "com.flotilla.driver=process", "sleep", "1000")
	if out := must("network", "ls", "--format", "{{.Name}}"); strings.Fields(out)[0] != "app" || len(strings.Fields(out)) != 2 {
		t.Errorf("refused requests changed the networks:\n%s", out)
	}
	if out := must("service", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("a refused service was created: %s", out)
	}

	if out := must("network", "rm", "app"); strings.TrimSpace(out) != "app" {
		t.Errorf("docker network rm printed %q", out)
	}
	refused("network app not found", "network", "inspect", "app")
}
