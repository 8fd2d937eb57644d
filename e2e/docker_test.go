package e2e

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDockerCLI drives flotilla with the unmodified docker CLI. DOCKER_HOST
// is set in each command's environment only, to the flotilla node's
// socket, with an empty DOCKER_CONFIG and every other DOCKER_* variable
// removed, so no command can reach this machine's own engine.
func TestDockerCLI(t *testing.T) {
	requireE2E(t)
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not on PATH; this test checks that it works as a flotilla client")
	}
	config := tempDir(t)
	docker := func(n *node, args ...string) cliResult {
		env := cleanEnv([]string{"DOCKER_HOST=" + n.host(), "DOCKER_CONFIG=" + config})
		return run(cliTimeout, env, dockerBin, args...)
	}
	must := func(n *node, args ...string) string {
		t.Helper()
		r := docker(n, args...)
		if r.err != nil {
			t.Fatalf("on %s: %v\nstdout: %s", n, r.err, r.stdout)
		}
		return r.stdout
	}
	hostStatus := func(n *node) (map[string]string, error) {
		r := docker(n, "node", "ls", "--format", "{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}")
		if r.err != nil {
			return nil, r.err
		}
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			host, rest, _ := strings.Cut(l, "|")
			m[host] = rest
		}
		return m, nil
	}
	waitStatus := func(via *node, host, want string) {
		t.Helper()
		eventually(t, convergeTimeout, func() error {
			m, err := hostStatus(via)
			if err != nil {
				return err
			}
			if m[host] != want {
				return fmt.Errorf("docker node ls on %s: %s is %q, want %q (all: %v)", via, host, m[host], want, m)
			}
			return nil
		})
	}

	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]

	out := must(m1, "info")
	for _, w := range []string{"Swarm: active", "NodeID: " + m1.id, "Is Manager: true", "Managers: 1", "Nodes: 2"} {
		if !strings.Contains(out, w) {
			t.Errorf("docker info does not say %q:\n%s", w, out)
		}
	}
	if out := must(w1, "info"); !strings.Contains(out, "Is Manager: false") {
		t.Errorf("docker info on the worker does not say Is Manager: false:\n%s", out)
	}

	out = must(m1, "node", "ls")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "MANAGER STATUS") {
		t.Errorf("docker node ls printed\n%s", out)
	}
	if !strings.Contains(out, m1.id+" *") || !strings.Contains(out, "Leader") || !strings.Contains(out, w1.id) {
		t.Errorf("docker node ls: want %s marked *, a Leader, and %s:\n%s", m1.id, w1.id, out)
	}
	if got := strings.Fields(must(m1, "node", "ls", "-q")); len(got) != 2 {
		t.Errorf("docker node ls -q printed %v", got)
	}

	out = must(m1, "swarm", "join-token", "worker")
	workerToken := strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", "worker"))
	if want := "docker swarm join --token " + workerToken + " " + m1.addr; !strings.Contains(out, want) {
		t.Errorf("docker swarm join-token worker printed\n%s\nwant the command %q", out, want)
	}
	if got := strings.TrimSpace(must(m1, "swarm", "join-token", "-q", "manager")); !strings.HasPrefix(got, "SWMTKN-1-") || got == workerToken {
		t.Errorf("docker swarm join-token -q manager printed %q", got)
	}

	must(m1, "node", "update", "--availability", "drain", "w1")
	if got := strings.TrimSpace(must(m1, "node", "inspect", "--format", "{{.Spec.Availability}}", "w1")); got != "drain" {
		t.Errorf("after docker node update --availability drain, availability is %q", got)
	}
	waitStatus(m1, "w1", "Ready|Drain|")

	if out := must(m1, "node", "promote", "w1"); !strings.Contains(out, "promoted to a manager") {
		t.Errorf("docker node promote printed %q", out)
	}
	waitStatus(m1, "w1", "Ready|Drain|Reachable")
	if out := must(m1, "node", "demote", "w1"); !strings.Contains(out, "demoted") {
		t.Errorf("docker node demote printed %q", out)
	}
	waitStatus(m1, "w1", "Ready|Drain|")

	// A new swarm made and joined with the docker CLI.
	s1, s2 := c.spare("s1"), c.spare("s2")
	if out := must(s1, "swarm", "init", "--listen-addr", s1.addr); !strings.Contains(out, "Swarm initialized") {
		t.Errorf("docker swarm init printed %q", out)
	}
	token := strings.TrimSpace(must(s1, "swarm", "join-token", "-q", "worker"))
	if out := must(s2, "swarm", "join", "--token", token, "--listen-addr", s2.addr, s1.addr); !strings.Contains(out, "joined a swarm as a worker") {
		t.Errorf("docker swarm join printed %q", out)
	}
	waitStatus(s1, "s2", "Ready|Active|")

	if out := must(s2, "swarm", "leave"); !strings.Contains(out, "left the swarm") {
		t.Errorf("docker swarm leave printed %q", out)
	}
	if out := must(s2, "info"); !strings.Contains(out, "Swarm: inactive") {
		t.Errorf("docker info after docker swarm leave does not say Swarm: inactive:\n%s", out)
	}
	waitStatus(s1, "s2", "Down|Active|")

	r := docker(s1, "swarm", "leave")
	if r.err == nil || !strings.Contains(r.stderr, "--force") {
		t.Errorf("docker swarm leave on the only manager: want a refusal mentioning --force, got %v", r.err)
	}
	start := time.Now()
	must(s1, "swarm", "leave", "--force")
	t.Logf("docker swarm leave --force of the last manager took %s", time.Since(start).Round(time.Millisecond))
	if out := must(s1, "info"); !strings.Contains(out, "Swarm: inactive") {
		t.Errorf("docker info after docker swarm leave --force does not say Swarm: inactive:\n%s", out)
	}
	if r := docker(s1, "node", "ls"); r.err == nil || !slices.ContainsFunc([]string{"not a swarm manager", "not part of a swarm"}, func(s string) bool { return strings.Contains(r.stderr, s) }) {
		t.Errorf("docker node ls after leaving: want docker's 'not a swarm manager' error, got %v", r.err)
	}
}
