package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRemovedManagerStopsRaft: a manager demoted and removed while it was
// down, then restarted on its data dir, must learn it was removed, stop
// its Raft (it campaigned forever against managers that refuse it) and
// advise leave and join, never --force-new-cluster (a second swarm with
// the same CA).
func TestRemovedManagerStopsRaft(t *testing.T) {
	c := newCluster(t, 3, 0)
	m1, m3 := c.managers[0], c.managers[2]
	m3.Kill9()
	eventually(t, downTimeout, rowsMatch(m1, func(m map[string]nodeRow) error {
		if m["m3"].Status != "Down" {
			return fmt.Errorf("m3 is %q after kill -9, want Down", m["m3"].Status)
		}
		return nil
	}))
	m1.mustCLI(t, "node", "demote", m3.id)
	m1.mustCLI(t, "node", "rm", "--force", m3.id)
	m3.Start()

	eventually(t, 20*time.Second, func() error {
		si, err := m3.swarmInfo()
		if err != nil {
			return err
		}
		if !strings.Contains(si.Error, "removed") || !strings.Contains(si.Error, "swarm leave") || si.ControlAvailable {
			return fmt.Errorf("m3's info says %+v; want: removed, advising swarm leave, no longer a manager", si)
		}
		return nil
	})
	// Its Raft is stopped: no more elections in its log (raft logs these
	// at warning level, which the daemon keeps).
	campaigns := func() int {
		b, _ := os.ReadFile(m3.logPath)
		return strings.Count(string(b), "starting election") + strings.Count(string(b), "restarting election") +
			strings.Count(string(b), "failed to make requestVote")
	}
	before := campaigns()
	consistently(t, 3*time.Second, func() error {
		if n := campaigns(); n != before {
			return fmt.Errorf("the removed manager still campaigns: %d elections in its log, %d before", n, before)
		}
		return nil
	})
	// The swarm goes on without it.
	m1.mustCLI(t, "service", "create", "--name", "after", "--replicas", "0", "--driver", "process", "/bin/sleep", "1")
}
