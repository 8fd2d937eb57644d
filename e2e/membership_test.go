package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// removalPeriod is the --node-down-removal the test sets.
const removalPeriod = 3 * time.Second

// TestNodeDownRemoval: `swarm update --node-down-removal 3s` is shown by
// info and survives `docker swarm update`; a worker killed with SIGKILL
// and left Down is removed by itself, and node ls stops listing it.
func TestNodeDownRemoval(t *testing.T) {
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]

	// Bad values are refused and change nothing.
	for _, bad := range []string{"-1s", "soon"} {
		if out, _, err := m1.CLI("swarm", "update", "--node-down-removal", bad); err == nil {
			t.Fatalf("swarm update --node-down-removal %s succeeded: %s", bad, out)
		}
	}
	if out := m1.mustCLI(t, "info"); strings.Contains(out, "Node Down Removal") {
		t.Fatalf("info shows a node-down-removal after refused updates (default is off):\n%s", out)
	}

	m1.mustCLI(t, "swarm", "update", "--node-down-removal", removalPeriod.String())
	if docker, err := exec.LookPath("docker"); err == nil {
		env := cleanEnv([]string{"DOCKER_HOST=" + m1.host(), "DOCKER_CONFIG=" + tempDir(t)})
		if r := run(cliTimeout, env, docker, "swarm", "update", "--task-history-limit", "4"); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if out := m1.mustCLI(t, "info"); !strings.Contains(out, "Node Down Removal: 3s") {
		t.Fatalf("info does not show the 3s node-down-removal:\n%s", out)
	}

	w1.Kill9()
	killed := time.Now()
	eventually(t, downTimeout+removalPeriod+5*time.Second, rowsMatch(m1, func(m map[string]nodeRow) error {
		if r, ok := m[w1.name]; ok {
			return fmt.Errorf("killed worker still listed as %s", r.Status)
		}
		return nil
	}))
	t.Logf("the killed worker left node ls %s after kill -9 (Down after ~3 s, then the %s period)", time.Since(killed).Round(time.Millisecond), removalPeriod)
	if log, _ := os.ReadFile(m1.logPath); !strings.Contains(string(log), "removed a node that stayed down") {
		t.Errorf("the manager's log does not say why %s was removed", w1)
	}
}

// TestManagerMovesAddress kills a manager of three (kill -9) and starts it
// again on a new IP and port: it keeps its node ID and Raft membership at
// the new address, the worker learns the new address, and once the leader
// is killed the moved manager and the third one still elect a leader and
// take writes.
func TestManagerMovesAddress(t *testing.T) {
	c := newCluster(t, 3, 1)
	leader := c.mustLeader(c.managers[0])
	moved := c.otherManagers(leader)[0]
	w1 := c.workers[0]
	oldAddr := moved.addr

	moved.Kill9() // the instance died; it comes back with another IP
	newAddr := net.JoinHostPort("127.0.0.2", strconv.Itoa(freePort(t)))
	moved.args = slices.Concat(c.args, []string{"--listen-addr", newAddr})
	moved.addr = newAddr
	moved.Start()
	restarted := time.Now()

	eventually(t, convergeTimeout, func() error {
		out, _, err := leader.CLI("node", "inspect", "--format", "{{.ID}} {{.ManagerStatus.Addr}} {{.Status.State}} {{.ManagerStatus.Reachability}}", moved.name)
		if err != nil {
			return err
		}
		if want := moved.id + " " + newAddr + " ready reachable"; strings.TrimSpace(out) != want {
			return fmt.Errorf("moved manager on the leader: %q, want %q", strings.TrimSpace(out), want)
		}
		return nil
	})
	t.Logf("the leader recorded the new address %s after the restart", time.Since(restarted).Round(time.Millisecond))
	eventually(t, convergeTimeout, func() error {
		si, err := w1.swarmInfo()
		if err != nil {
			return err
		}
		var addrs []string
		for _, p := range si.RemoteManagers {
			addrs = append(addrs, p.Addr)
		}
		if !slices.Contains(addrs, newAddr) || slices.Contains(addrs, oldAddr) {
			return fmt.Errorf("worker's managers %v: want %s and not %s", addrs, newAddr, oldAddr)
		}
		return nil
	})

	if log, _ := os.ReadFile(leader.logPath); !strings.Contains(string(log), "raft now reaches it at its new address") {
		t.Errorf("the leader's log does not record the manager's move")
	}

	leader.Kill9()
	writeWithin(t, moved, time.Now(), convergeTimeout, moved.name, "moved=1")
	si, err := moved.swarmInfo()
	if err != nil {
		t.Fatal(err)
	}
	if si.NodeID != moved.id || !si.ControlAvailable || si.NodeAddr != "127.0.0.2" {
		t.Errorf("moved manager's info: %+v, want node %s, a manager, at 127.0.0.2", si, moved.id)
	}
}
