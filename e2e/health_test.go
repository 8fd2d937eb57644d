package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestProcessHealthCheck runs a process service whose health check looks
// for a file: the task runs once healthy; when the file goes, the task is
// failed as unhealthy, its program stopped and a new task started; a
// rolling update to a check that never passes is rolled back.
func TestProcessHealthCheck(t *testing.T) {
	c := processCluster(t, 1, 1)
	m1 := c.managers[0]
	okFile := filepath.Join(tempDir(t), "ok")
	if err := os.WriteFile(okFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	check := "test -f " + okFile
	r := m1.mustService(t, "service", "create", "--name", "hc", "--driver", "process",
		"--health-cmd", check, "--health-interval", "200ms", "--health-retries", "2",
		"--restart-delay", "100ms", "--update-monitor", "1s", "/bin/sleep", "1000")
	t.Logf("service create with a health check converged in %s", r.elapsed.Round(time.Millisecond))
	rows := m1.waitRunning(t, "hc", 1, convergeTimeout, nil)
	first := rows[0]
	if !strings.HasPrefix(first.Current, "Running (healthy)") {
		t.Errorf("service ps shows %q, want Running (healthy)", first.Current)
	}
	var firstProc taskProc
	eventually(t, 10*time.Second, func() error {
		byTask, err := checkProcsMatch(rows, serviceProcs("hc", c.nodes...))
		firstProc = byTask[first.ID]
		return err
	})

	// Unhealthy: failed with Docker's words, stopped, replaced.
	if err := os.Remove(okFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		all, err := m1.servicePs("hc")
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(r psRow) bool { return r.ID == first.ID })
		if i < 0 {
			return fmt.Errorf("task %s is gone from service ps: %v", first.ID, all)
		}
		if r := all[i]; !strings.HasPrefix(r.Current, "Failed (unhealthy)") || !strings.Contains(r.Error, "unhealthy container") {
			return fmt.Errorf("task %v has not failed as unhealthy", r)
		}
		return nil
	})
	eventually(t, 20*time.Second, func() error {
		if alive(firstProc.pid) {
			return fmt.Errorf("the unhealthy task's program %v still runs", firstProc)
		}
		return nil
	})
	if err := os.WriteFile(okFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, convergeTimeout, func() error {
		rows, err := m1.runningTasks("hc", 1, nil)
		if err != nil {
			return err
		}
		if rows[0].ID == first.ID || !strings.HasPrefix(rows[0].Current, "Running (healthy)") {
			return fmt.Errorf("want a new healthy task in place of %s, have %v", first.ID, rows[0])
		}
		return nil
	})
	healthy := m1.waitRunning(t, "hc", 1, convergeTimeout, nil)[0]

	// An update to a check that never passes rolls back to the last one.
	fr := m1.cliTimeout(serviceTimeout, "service", "update", "--health-cmd", "exit 1",
		"--update-failure-action", "rollback", "--rollback-monitor", "1s", "hc")
	t.Logf("never-healthy update: exit error after %s: %v\nstdout:\n%s", fr.elapsed.Round(time.Millisecond), fr.err, fr.stdout)
	if fr.err == nil {
		t.Fatalf("an update to a health check that never passes succeeded:\n%s", fr.stdout)
	}
	if !containsAny(fr.stderr, "rolled back") {
		t.Errorf("the failed update's error does not say it was rolled back: %q", fr.stderr)
	}
	got := strings.TrimSpace(m1.mustCLI(t, "service", "inspect", "--format",
		"{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck.Test}} {{.UpdateStatus.State}}", "hc"))
	if want := fmt.Sprintf(`["CMD-SHELL","%s"] rollback_completed`, check); got != want {
		t.Errorf("after the rollback: %s, want %s", got, want)
	}
	after := m1.waitRunning(t, "hc", 1, convergeTimeout, nil)[0]
	if after.ID == healthy.ID || !strings.HasPrefix(after.Current, "Running (healthy)") {
		t.Errorf("after the rollback: %v, want a new healthy task with the old check (the update replaced %s)", after, healthy.ID)
	}
	all, err := m1.servicePs("hc")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(all, func(r psRow) bool {
		return strings.HasPrefix(r.Current, "Failed (unhealthy)") && r.ID != first.ID
	}) {
		t.Errorf("no task of the never-healthy spec failed as unhealthy: %v", all)
	}
}

// TestProcessHealthAcrossAgentRestart: the shim runs the checks, so a
// worker's daemon restarted while its task is still starting finds the
// task's health where the checks left it: the task turns running once
// healthy and later fails as unhealthy, without being started again.
func TestProcessHealthAcrossAgentRestart(t *testing.T) {
	c := processCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	okFile := filepath.Join(tempDir(t), "ok")
	m1.mustCLI(t, "service", "create", "-d", "--name", "hr", "--driver", "process", "--constraint", "node.role==worker",
		"--health-cmd", "test -f "+okFile, "--health-interval", "100ms", "--health-retries", "2",
		// Failures before the first success do not count for a minute:
		// the task stays starting while its agent restarts.
		"--health-start-period", "1m", "--health-start-interval", "100ms",
		"--restart-condition", "none", "/bin/sleep", "1000")
	var task psRow
	eventually(t, convergeTimeout, func() error {
		rows, err := m1.servicePs("hr")
		if err != nil || len(rows) != 1 || !strings.HasPrefix(rows[0].Current, "Starting (health: starting)") {
			return fmt.Errorf("want one task starting, waiting for its check: %v %v", rows, err)
		}
		task = rows[0]
		return nil
	})
	var proc taskProc
	eventually(t, 10*time.Second, func() error {
		procs := serviceProcs("hr", w1)
		if len(procs) != 1 {
			return fmt.Errorf("%d programs of hr run, want 1", len(procs))
		}
		proc = procs[0]
		return nil
	})

	w1.Stop()
	if err := os.WriteFile(okFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w1.Start()
	c.waitReady(m1, convergeTimeout)
	rows := m1.waitRunning(t, "hr", 1, convergeTimeout, nil)
	if rows[0].ID != task.ID || !strings.HasPrefix(rows[0].Current, "Running (healthy)") {
		t.Errorf("after the agent restart: %v, want task %s running (healthy)", rows[0], task.ID)
	}
	if p := serviceProcs("hr", w1); len(p) != 1 || p[0].pid != proc.pid {
		t.Errorf("after the agent restart the programs of hr are %v, want the same pid %d", p, proc.pid)
	}

	// Still followed: unhealthy fails it (and with restart none, for good).
	if err := os.Remove(okFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		rows, err := m1.servicePs("hr")
		if err != nil || len(rows) != 1 || !strings.HasPrefix(rows[0].Current, "Failed (unhealthy)") {
			return fmt.Errorf("want the task failed as unhealthy: %v %v", rows, err)
		}
		if alive(proc.pid) {
			return fmt.Errorf("the unhealthy task's program %v still runs", proc)
		}
		return nil
	})
}
