package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Restored at a new address, the swarm is found by a surviving worker once
// its manager list is pointed there (the procedure in docs/operations.md):
// it comes back Ready and its task processes were never restarted.
func TestRestoreAtNewAddressWorkerRepointed(t *testing.T) {
	c := newClusterArgs(t, 1, 1, "--no-docker")
	m1, w1 := c.managers[0], c.workers[0]
	m1.mustCLI(t, "node", "update", "--availability", "drain", m1.name)
	m1.mustCLI(t, "service", "create", "--name", "keep", "--replicas", "1", "--driver", "process", "--detach", "/bin/sleep", "1000")
	m1.waitRunning(t, "keep", 1, 30*time.Second, nodeNames(w1))
	procs := serviceProcs("keep", w1)
	file := filepath.Join(c.base, "swarm.backup")
	m1.mustCLI(t, "swarm", "backup", "-o", file)
	m1.Kill9()
	if err := os.RemoveAll(m1.dataDir); err != nil {
		t.Fatal(err)
	}

	r := c.spare("r1")
	r.mustCLI(t, "swarm", "restore", "-i", file, "--listen-addr", r.addr)
	w1.Stop()
	stateFile := filepath.Join(w1.dataDir, "swarm", "state.json")
	b, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st["Managers"] = []map[string]string{{"NodeID": "", "Addr": r.addr}}
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stateFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	w1.Start()
	eventually(t, 30*time.Second, rowsMatch(r, func(rows map[string]nodeRow) error {
		if rows["w1"].Status != "Ready" || rows["m1"].Status != "Down" {
			return fmt.Errorf("want w1 Ready and m1 Down")
		}
		return nil
	}))
	r.waitRunning(t, "keep", 1, 30*time.Second, nodeNames(w1))
	if after := serviceProcs("keep", w1); fmt.Sprint(after) != fmt.Sprint(procs) {
		t.Errorf("task processes changed: before %v, after %v", procs, after)
	}
}
