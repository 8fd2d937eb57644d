package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRemovedOrLeavingNodeStopsItsTasks: a node's tasks are built to
// outlive its daemon, so a node that leaves its swarm, or learns on restart
// that it was removed while it was down, must stop them itself — nothing
// else ever would (they ran on, surviving even `service rm`).
func TestRemovedOrLeavingNodeStopsItsTasks(t *testing.T) {
	c := processCluster(t, 1, 2)
	m1, w1, w2 := c.managers[0], c.workers[0], c.workers[1]
	m1.mustService(t, "service", "create", "--name", "g", "--mode", "global", "--driver", "process", "/bin/sleep", "1000")
	m1.waitRunning(t, "g", 3, convergeTimeout, nil)
	procsOn := func(n *node) []taskProc {
		var out []taskProc
		eventually(t, 10*time.Second, func() error {
			out = serviceProcs("g", n)
			if len(out) != 1 {
				return fmt.Errorf("%s runs %d programs of g, want 1: %v", n, len(out), out)
			}
			return nil
		})
		return out
	}
	goneOn := func(n *node, procs []taskProc, why string) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			for _, p := range procs {
				if alive(p.pid) {
					return fmt.Errorf("%s: program %v still runs", why, p)
				}
			}
			if left := serviceProcs("g", n); len(left) > 0 {
				return fmt.Errorf("%s: %s still runs %v", why, n, left)
			}
			return nil
		})
	}

	// A worker that leaves stops its task.
	p2 := procsOn(w2)
	w2.mustCLI(t, "swarm", "leave")
	goneOn(w2, p2, "after swarm leave")

	// A worker removed while it was down learns it on restart and stops
	// its task, and says what to do.
	p1 := procsOn(w1)
	w1.Kill9()
	eventually(t, downTimeout, rowsMatch(m1, func(m map[string]nodeRow) error {
		if m["w1"].Status != "Down" {
			return fmt.Errorf("w1 is %q after kill -9, want Down", m["w1"].Status)
		}
		return nil
	}))
	if !alive(p1[0].pid) {
		t.Fatalf("the task program of w1 died with its daemon; it must outlive it: %v", p1[0])
	}
	m1.mustCLI(t, "node", "rm", "--force", w1.id)
	w1.Start()
	goneOn(w1, p1, "after restart of a removed node")
	eventually(t, 10*time.Second, func() error {
		si, err := w1.swarmInfo()
		if err != nil {
			return err
		}
		if !strings.Contains(si.Error, "removed") {
			return fmt.Errorf("w1's info says %+v; want an error saying it was removed", si)
		}
		return nil
	})
	// The manager's own task is untouched.
	procsOn(m1)
}
