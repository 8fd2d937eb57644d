package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
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
	// Once the shim has recorded a check, the agent has long recorded the
	// task as started (stopped before that, it would start it afresh).
	eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(w1.dataDir, "tasks", task.ID, "health.json"))
		if err != nil || !strings.Contains(string(b), `"log"`) {
			return fmt.Errorf("no health check result recorded yet: %s %v", b, err)
		}
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

// TestHealthRotation: through the routing mesh, connections reach only
// healthy tasks. A task whose check starts failing leaves rotation on
// every node as soon as it is reported unhealthy; its replacement gets
// no connection while it is still starting, and joins once healthy.
func TestHealthRotation(t *testing.T) {
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	port := uint32(freePort(t))
	dir := tempDir(t)
	okFile := func(slot int) string { return filepath.Join(dir, fmt.Sprintf("ok-%d", slot)) }
	for _, slot := range []int{1, 2} {
		if err := os.WriteFile(okFile(slot), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := meshServiceSpec("hw", app, port, 2, nil)
	// Failures before the first success do not count for a minute, so a
	// replacement stays starting while its file is missing.
	spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{
		Test:     []string{"CMD-SHELL", "test -f " + filepath.Join(dir, "ok-$FLOTILLA_TASK_SLOT")},
		Interval: 100 * time.Millisecond, Retries: 2, StartPeriod: time.Minute, StartInterval: 100 * time.Millisecond,
	}
	if status, body, err := m1.apiRequest(http.MethodPost, "/services/create", spec); err != nil || status != http.StatusCreated {
		t.Fatalf("create hw: %d %s %v", status, body, err)
	}
	rows := m1.waitRunning(t, "hw", 2, convergeTimeout, nil)
	slot1 := rows[slices.IndexFunc(rows, func(r psRow) bool { return r.Name == "hw.1" })]

	// answers asks every node n times and counts the tasks that answered.
	answers := func(n int) (map[string]int, error) {
		seen := map[string]int{}
		for _, via := range []*node{m1, w1} {
			for range n {
				a, err := askMesh(via.publishHost, port)
				if err != nil {
					return seen, err
				}
				a.conn.Close()
				seen[a.task]++
			}
		}
		return seen, nil
	}
	eventually(t, convergeTimeout, func() error {
		seen, err := answers(6)
		if err != nil || len(seen) != 2 {
			return fmt.Errorf("want both tasks answering, got %v (%v)", seen, err)
		}
		return nil
	})

	if err := os.Remove(okFile(1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		all, err := m1.servicePs("hw")
		if err != nil {
			return err
		}
		if i := slices.IndexFunc(all, func(r psRow) bool { return r.ID == slot1.ID }); i < 0 || !strings.HasPrefix(all[i].Current, "Failed (unhealthy)") {
			return fmt.Errorf("task %s has not failed as unhealthy: %v", slot1.ID, all)
		}
		return nil
	})
	start := time.Now()
	// Out of rotation everywhere within the time the managers' news takes
	// to reach each node's mesh; the replacement, still starting, never
	// gets a connection.
	eventually(t, 5*time.Second, func() error {
		seen, err := answers(4)
		if err != nil {
			return err
		}
		if len(seen) != 1 || seen[slot1.ID] > 0 {
			return fmt.Errorf("connections reached %v; want only slot 2's task", seen)
		}
		return nil
	})
	t.Logf("the unhealthy task left rotation on every node %s after service ps showed it failed", time.Since(start).Round(time.Millisecond))
	var replacement psRow
	eventually(t, convergeTimeout, func() error {
		all, err := m1.servicePs("hw", "--filter", "desired-state=running")
		if err != nil {
			return err
		}
		i := slices.IndexFunc(all, func(r psRow) bool { return r.Name == "hw.1" })
		if i < 0 || !strings.HasPrefix(all[i].Current, "Starting (health: starting)") {
			return fmt.Errorf("want slot 1's replacement starting: %v", all)
		}
		replacement = all[i]
		return nil
	})
	consistently(t, 2*time.Second, func() error {
		seen, err := answers(2)
		if err != nil {
			return err
		}
		if seen[replacement.ID] > 0 || seen[slot1.ID] > 0 {
			return fmt.Errorf("connections reached %v; the replacement %s is not healthy yet", seen, replacement.ID)
		}
		return nil
	})

	if err := os.WriteFile(okFile(1), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, convergeTimeout, func() error {
		seen, err := answers(6)
		if err != nil || seen[replacement.ID] == 0 || len(seen) != 2 {
			return fmt.Errorf("want the healthy replacement %s in rotation beside slot 2: %v (%v)", replacement.ID, seen, err)
		}
		return nil
	})
}
