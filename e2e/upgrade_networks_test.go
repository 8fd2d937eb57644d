package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildPreNetworks builds the flotilla of the commit before networks
// existed (the parent of the one that added manager/state/networks.go),
// or skips the test when this checkout has no such history.
func buildPreNetworks(t *testing.T) string {
	t.Helper()
	return buildBefore(t, "manager/state/networks.go", "networks")
}

// buildBefore builds the flotilla from just before the commit that added
// path (what names the feature, for the skip message): the earlier version
// of an upgrade test. It skips without git history.
func buildBefore(t *testing.T, path, what string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", "..", "log", "--diff-filter=A", "--format=%H", "--", path).Output()
	hashes := strings.Fields(string(out))
	if err != nil || len(hashes) == 0 {
		t.Skipf("no git history to build the flotilla from before %s (%v)", what, err)
	}
	rev := hashes[len(hashes)-1] + "^"
	src := tempDir(t)
	archive := exec.Command("sh", "-c", fmt.Sprintf("git -C .. archive %s | tar -x -C %s", rev, src))
	if out, err := archive.CombinedOutput(); err != nil {
		t.Skipf("cannot extract %s: %v\n%s", rev, err, out)
	}
	bin := filepath.Join(src, "flotilla-old")
	build := exec.Command("go", "build", "-o", bin, "./cmd/flotilla")
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of %s: %v\n%s", rev, err, out)
	}
	return bin
}

// TestUpgradeMakesIngress starts a swarm with the flotilla from before
// networks, publishes a port, and restarts it on this flotilla: the
// leader gives the cluster its ingress network, which then guards the
// published port; removed by the user, it is not made again.
func TestUpgradeMakesIngress(t *testing.T) {
	requireE2E(t)
	old := buildPreNetworks(t)
	c := &cluster{t: t, base: tempDir(t)}
	t.Cleanup(c.cleanup)
	m1 := c.newNode("m1")
	m1.bin = old
	m1.Start()
	m1.mustCLI(t, "swarm", "init", "--listen-addr", m1.addr)
	port := freePort(t)
	m1.mustCLI(t, "service", "create", "--name", "web", "--replicas", "0", "--driver", "process", "--detach",
		"-p", fmt.Sprintf("%d:80", port), "/bin/true")
	if _, _, err := m1.CLI("network", "ls"); err == nil {
		t.Fatal("the old flotilla answers network ls: it is not from before networks")
	}

	m1.Stop()
	m1.bin = ""
	m1.Start()
	eventually(t, convergeTimeout, func() error {
		out, _, err := m1.CLI("network", "inspect", "--format", "{{.Ingress}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}", "ingress")
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(out); got != "true overlay 10.0.0.0/24" {
			return fmt.Errorf("the ingress network after the upgrade: %q", got)
		}
		return nil
	})
	if log, _ := os.ReadFile(m1.logPath); !strings.Contains(string(log), "made the ingress network, which this cluster lacked") {
		t.Error("the daemon's log does not say it made the ingress network")
	}
	mustFail(t, m1, "ingress network cannot be removed because service", "network", "rm", "ingress")

	m1.mustCLI(t, "service", "rm", "web")
	m1.mustCLI(t, "network", "rm", "ingress")
	m1.Stop()
	m1.Start()
	eventually(t, convergeTimeout, func() error {
		_, _, err := m1.CLI("network", "create", "after")
		return err
	})
	if out := strings.Fields(m1.mustCLI(t, "network", "ls", "--format", "{{.Name}}")); len(out) != 1 || out[0] != "after" {
		t.Errorf("networks after a restart: %v; want only 'after' (a removed ingress is not made again)", out)
	}
}
