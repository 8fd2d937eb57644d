package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/security/encryption"
)

// The unmodified docker CLI's autolock commands against a flotilla node:
// init --autolock, info showing "locked", unlock (key on stdin),
// unlock-key [-q] [--rotate] and update --autolock=false.
func TestAutolockDockerCLI(t *testing.T) {
	requireE2E(t)
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not on PATH; this test checks that it works as a flotilla client")
	}
	c := newClusterArgs(t, 0, 0, "--no-docker")
	m1 := c.spare("m1")
	c.managers = []*node{m1}
	// DOCKER_HOST always points at the flotilla socket, never this
	// machine's engine.
	env := cleanEnv([]string{"DOCKER_HOST=" + m1.host(), "DOCKER_CONFIG=" + tempDir(t)})
	docker := func(stdin string, args ...string) (string, error) {
		return runStdin(env, stdin, dockerBin, args...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := docker("", args...)
		if err != nil {
			t.Fatalf("docker %v: %v\n%s", args, err, out)
		}
		return out
	}
	state := func() string {
		t.Helper()
		return strings.TrimSpace(must("info", "--format", "{{.Swarm.LocalNodeState}}"))
	}

	if out, err := docker("", "swarm", "unlock"); err == nil || !strings.Contains(out, "This node is not part of a swarm") {
		t.Errorf("docker swarm unlock outside a swarm: %v %s", err, out)
	}
	key := unlockKeyOf(t, must("swarm", "init", "--autolock", "--listen-addr", m1.addr))
	if got := strings.TrimSpace(must("swarm", "unlock-key", "-q")); got != key {
		t.Fatalf("docker swarm unlock-key -q = %q, init printed %q", got, key)
	}
	if out := must("swarm", "unlock-key"); !strings.Contains(out, key) || !strings.Contains(out, "swarm unlock") {
		t.Errorf("docker swarm unlock-key printed %q", out)
	}
	if out, err := docker("", "swarm", "unlock"); err == nil || !strings.Contains(out, "swarm is not locked") {
		t.Errorf("docker swarm unlock on an unlocked node: %v %s", err, out)
	}

	m1.Stop()
	m1.Start()
	if st := state(); st != "locked" {
		t.Fatalf("docker info shows %q after a restart with autolock", st)
	}
	if out, err := docker("", "node", "ls"); err == nil || !strings.Contains(out, "Swarm is encrypted and needs to be unlocked") {
		t.Errorf("docker node ls on a locked node: %v %s", err, out)
	}
	if out, err := docker("", "swarm", "init", "--force-new-cluster"); err == nil || !strings.Contains(out, "Swarm is encrypted") {
		t.Errorf("docker swarm init --force-new-cluster on a locked node: %v %s", err, out)
	}
	wrong, _ := encryption.NewKey()
	if out, err := docker(wrong.UnlockKeyString()+"\n", "swarm", "unlock"); err == nil || !strings.Contains(out, "invalid key") {
		t.Errorf("docker swarm unlock with a wrong key: %v %s", err, out)
	}
	if out, err := docker(key+"\n", "swarm", "unlock"); err != nil {
		t.Fatalf("docker swarm unlock: %v %s", err, out)
	}
	if st := state(); st != "active" {
		t.Fatalf("after unlock docker info shows %q", st)
	}

	rotated := must("swarm", "unlock-key", "--rotate")
	newKey := unlockKeyOf(t, rotated)
	if newKey == key || !strings.Contains(rotated, "Successfully rotated manager unlock key") {
		t.Fatalf("docker swarm unlock-key --rotate printed %q", rotated)
	}
	m1.Stop()
	m1.Start()
	if out, err := docker(key+"\n", "swarm", "unlock"); err == nil {
		t.Errorf("the rotated-away key unlocked: %s", out)
	}
	if out, err := docker(newKey+"\n", "swarm", "unlock"); err != nil {
		t.Fatalf("docker swarm unlock with the new key: %v %s", err, out)
	}

	must("swarm", "update", "--autolock=false")
	if out, err := docker("", "swarm", "unlock-key"); err == nil || !strings.Contains(out, "no unlock key is set") {
		t.Errorf("docker swarm unlock-key with autolock off: %v %s", err, out)
	}
	if out, err := docker("", "swarm", "unlock-key", "--rotate"); err == nil || !strings.Contains(out, "autolock is not turned on") {
		t.Errorf("docker swarm unlock-key --rotate with autolock off: %v %s", err, out)
	}
	m1.Stop()
	m1.Start()
	if st := state(); st != "active" {
		t.Fatalf("with autolock off the restart came up %q", st)
	}
	// A restarted manager answers once Raft has replayed its state.
	eventually(t, convergeTimeout, func() error {
		out, err := docker("", "swarm", "update", "--autolock=true")
		if err == nil && !strings.Contains(out, "SWMKEY-1-") {
			t.Errorf("docker swarm update --autolock=true printed no key: %q", out)
		}
		return err
	})
	// A locked node whose key is lost can only leave, with --force.
	m1.Stop()
	m1.Start()
	if out, err := docker("", "swarm", "leave"); err == nil || !strings.Contains(out, "use `--force`") {
		t.Errorf("docker swarm leave on a locked node: %v %s", err, out)
	}
	must("swarm", "leave", "--force")
	if st := state(); st != "inactive" {
		t.Errorf("after leave --force the node is %q", st)
	}
}
