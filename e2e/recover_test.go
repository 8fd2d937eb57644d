package e2e

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// Two of three managers die for good: the survivor refuses writes, then
// `swarm init --force-new-cluster` makes it a one-manager swarm with all of
// its state; the tasks keep running untouched (same task IDs), the worker
// comes back by itself, the lost managers are demoted and removed, and two
// fresh managers join, after which the swarm survives losing one again.
func TestForceNewCluster(t *testing.T) {
	c := newClusterArgs(t, 3, 1, "--no-docker")
	m1, m2, m3, w1 := c.managers[0], c.managers[1], c.managers[2], c.workers[0]
	for _, m := range c.managers {
		m3.mustCLI(t, "node", "update", "--availability", "drain", m.name)
	}
	m3.mustCLI(t, "service", "create", "--name", "keep", "--replicas", "2", "--driver", "process", "--detach", "/bin/sleep", "1000")
	before := m3.waitRunning(t, "keep", 2, 30*time.Second, func(node string) bool { return node == w1.name })
	procsBefore := serviceProcs("keep", w1)
	if len(procsBefore) != 2 {
		t.Fatalf("want the 2 task processes on %s, found %v", w1.name, procsBefore)
	}

	m1.Kill9()
	m2.Kill9()
	r := m3.cliTimeout(30*time.Second, "node", "update", "--label-add", "lost=1", m3.name)
	if r.err == nil {
		t.Fatal("a write succeeded with two of three managers dead")
	}
	if !strings.Contains(r.stderr+r.err.Error(), "force-new-cluster") {
		t.Errorf("the quorum error does not mention --force-new-cluster: %s %v", r.stderr, r.err)
	}

	// The unmodified docker CLI when it is here (its request carries the
	// default listen address 0.0.0.0:2377, which must not move the
	// manager); the flotilla CLI's is covered by the backup tests.
	if dockerBin, err := exec.LookPath("docker"); err == nil {
		env := cleanEnv([]string{"DOCKER_HOST=" + m3.host(), "DOCKER_CONFIG=" + tempDir(t)})
		r := run(cliTimeout, env, dockerBin, "swarm", "init", "--force-new-cluster")
		if r.err != nil || !strings.Contains(r.stdout, "is now a manager") {
			t.Fatalf("docker swarm init --force-new-cluster: %v\n%s", r.err, r.stdout)
		}
	} else {
		out := m3.mustCLI(t, "swarm", "init", "--force-new-cluster")
		if !strings.Contains(out, "is now a manager") {
			t.Errorf("swarm init --force-new-cluster printed %q", out)
		}
	}
	eventually(t, 10*time.Second, func() error {
		_, stderr, err := m3.CLI("node", "update", "--label-add", "recovered=1", m3.name)
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		return nil
	})
	after := m3.waitRunning(t, "keep", 2, 30*time.Second, func(node string) bool { return node == w1.name })
	ids := func(rows []psRow) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.ID)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(ids(before), ids(after)) {
		t.Errorf("the recovery replaced tasks: before %v, after %v", before, after)
	}
	if procsAfter := serviceProcs("keep", w1); fmt.Sprint(procsAfter) != fmt.Sprint(procsBefore) {
		t.Errorf("the recovery restarted task processes: before %v, after %v", procsBefore, procsAfter)
	}
	// The worker reconnects by itself; the lost managers show Down.
	eventually(t, 20*time.Second, func() error {
		rows, err := m3.rows()
		if err != nil {
			return err
		}
		for _, row := range rows {
			switch row.Hostname {
			case w1.name, m3.name:
				if row.Status != "Ready" {
					return fmt.Errorf("%v is not Ready", row)
				}
			case m1.name, m2.name:
				if row.Status != "Down" {
					return fmt.Errorf("%v is not Down", row)
				}
			}
		}
		return nil
	})
	m3.mustCLI(t, "node", "demote", m1.name, m2.name)
	m3.mustCLI(t, "node", "rm", m1.name, m2.name)

	token := strings.TrimSpace(m3.mustCLI(t, "swarm", "join-token", "-q", "manager"))
	m4, m5 := c.spare("m4"), c.spare("m5")
	m4.mustCLI(t, "swarm", "join", "--token", token, "--listen-addr", m4.addr, m3.addr)
	m5.mustCLI(t, "swarm", "join", "--token", token, "--listen-addr", m5.addr, m3.addr, m4.addr)
	eventually(t, 30*time.Second, func() error {
		rows, err := m3.rows()
		if err != nil {
			return err
		}
		if len(rows) != 4 {
			return fmt.Errorf("want m3, w1, m4 and m5, got %v", rows)
		}
		for _, row := range rows {
			if (row.Hostname == m4.name || row.Hostname == m5.name) && row.ManagerStatus != "Reachable" {
				return fmt.Errorf("the new manager is %v", row)
			}
		}
		return nil
	})
	// Three managers again: the swarm survives losing one.
	m3.Kill9()
	eventually(t, 15*time.Second, func() error {
		_, stderr, err := m4.CLI("node", "update", "--label-add", "joined=1", m5.name)
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		return nil
	})
	if procsAfter := serviceProcs("keep", w1); fmt.Sprint(procsAfter) != fmt.Sprint(procsBefore) {
		t.Errorf("task processes changed: before %v, after %v", procsBefore, procsAfter)
	}
}
