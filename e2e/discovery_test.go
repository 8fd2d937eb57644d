package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const bootstrapSecret = "e2e-bootstrap-secret-0123456789"

// TestBootstrapExpectFormsOneSwarm starts a worker first, then three
// managers at the same moment, all given the same static list of the
// managers: they must form exactly one swarm with no node told to init,
// and the worker, which waited, joins it.
func TestBootstrapExpectFormsOneSwarm(t *testing.T) {
	requireE2E(t)
	c := &cluster{t: t, base: tempDir(t)}
	t.Cleanup(c.cleanup)
	for i := range 3 {
		c.managers = append(c.managers, c.newNode(fmt.Sprintf("m%d", i+1)))
	}
	w := c.newNode("w1")
	c.workers = []*node{w}
	var addrs []string
	for _, m := range c.managers {
		addrs = append(addrs, m.addr)
	}
	spec := strings.Join(addrs, ",")
	w.args = []string{"--no-docker", "--join", spec, "--bootstrap-token", bootstrapSecret, "--listen-addr", w.addr}
	w.Start()
	// A worker with the wrong secret derives a token no manager accepts.
	bad := c.newNode("w-bad")
	bad.args = []string{"--no-docker", "--join", spec, "--bootstrap-token", "not-the-shared-secret", "--listen-addr", bad.addr}
	bad.Start()
	for _, m := range c.managers {
		m.args = []string{"--no-docker", "--join", spec, "--bootstrap-expect", "3", "--bootstrap-token", bootstrapSecret, "--listen-addr", m.addr}
		m.launch()
	}
	for _, m := range c.managers {
		m.waitAPI()
	}
	m1 := c.managers[0]
	eventually(t, convergeTimeout, func() error {
		for _, n := range append(slices.Clone(c.managers), w) {
			si, err := n.swarmInfo()
			if err != nil {
				return err
			}
			if si.NodeID == "" {
				return fmt.Errorf("%s is in no swarm yet", n)
			}
			n.id = si.NodeID
		}
		return nil
	})
	c.waitReady(m1, convergeTimeout)
	// One swarm: every manager sees all four nodes, the same ones.
	for _, m := range c.managers {
		si, err := m.swarmInfo()
		if err != nil {
			t.Fatal(err)
		}
		if si.Nodes != 4 || si.Managers != 3 {
			t.Errorf("%s sees %d nodes and %d managers, want 4 and 3", m, si.Nodes, si.Managers)
		}
	}
	if n := strings.Count(readAll(t, m1.logPath)+readAll(t, c.managers[1].logPath)+readAll(t, c.managers[2].logPath), "initialised the swarm"); n != 1 {
		t.Errorf("%d managers initialised a swarm, want exactly 1", n)
	}
	eventually(t, convergeTimeout, func() error {
		if !strings.Contains(readAll(t, bad.logPath), "the managers refused to admit this node") {
			return fmt.Errorf("w-bad has not reported its refused token")
		}
		return nil
	})
	if si, err := bad.swarmInfo(); err != nil || si.NodeID != "" {
		t.Errorf("w-bad, with the wrong bootstrap token: info %+v, %v; want no swarm", si, err)
	}
}

// TestJoinThroughDiscoveryAndRestart joins a worker through a file
// provider whose first manager is dead, restarts it after the manager it
// joined through died, and restarts it once more after every manager it
// remembered was gone, so that only the remembered provider finds them.
func TestJoinThroughDiscoveryAndRestart(t *testing.T) {
	c := newClusterArgs(t, 3, 0, "--no-docker")
	m1, m2, m3 := c.managers[0], c.managers[1], c.managers[2]
	dead := "127.0.0.1:" + strconv.Itoa(freePort(t))
	list := filepath.Join(c.base, "managers")
	if err := os.WriteFile(list, []byte("# the swarm's managers\n"+dead+"\n"+m1.addr+"\n"+m2.addr+"\n"+m3.addr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", "worker"))
	w := c.newNode("w1")
	c.workers = []*node{w}
	w.args = []string{"--no-docker", "--join", "file:" + list, "--join-token", token, "--listen-addr", w.addr}
	w.Start()
	eventually(t, convergeTimeout, func() error {
		si, err := w.swarmInfo()
		if err == nil && si.NodeID == "" {
			err = fmt.Errorf("w1 is in no swarm yet")
		}
		w.id = si.NodeID
		return err
	})
	c.waitReady(m1, convergeTimeout)
	// The CLI's --discover, through the same list.
	w2 := c.spare("w2")
	w2.mustCLI(t, "swarm", "join", "--discover", "file:"+list, "--token", token, "--listen-addr", w2.addr)
	if _, _, err := w2.CLI("swarm", "join", "--discover", "dns+srv:", "--token", token); err == nil || !strings.Contains(err.Error(), "--discover") {
		t.Errorf("swarm join with a malformed --discover: err = %v, want one naming --discover", err)
	}

	st := readLocalState(t, w)
	if st.Discovery != "file:"+list || len(st.Managers) != 3 {
		t.Fatalf("w1 remembers discovery %q and managers %v, want file:%s and 3 managers", st.Discovery, st.Managers, list)
	}

	// The manager it joined through dies while it is stopped.
	w.Stop()
	m1.Kill9()
	w.args = []string{"--no-docker"} // a restart needs no --join
	w.Start()
	readyOn := func(via *node) func() error {
		return rowsMatch(via, func(m map[string]nodeRow) error {
			if m["w1"].Status != "Ready" {
				return fmt.Errorf("w1 is %s", m["w1"].Status)
			}
			return nil
		})
	}
	waitDown := func(via *node) {
		eventually(t, convergeTimeout, rowsMatch(via, func(m map[string]nodeRow) error {
			if m["w1"].Status != "Down" {
				return fmt.Errorf("w1 is %s", m["w1"].Status)
			}
			return nil
		}))
	}
	eventually(t, convergeTimeout, readyOn(m2))

	// A manager that joins later reaches the worker's remembered list
	// through the heartbeats.
	m4 := c.spare("m4")
	m4.mustCLI(t, "swarm", "join", "--token", strings.TrimSpace(m2.mustCLI(t, "swarm", "join-token", "-q", "manager")), "--listen-addr", m4.addr, m2.addr)
	eventually(t, convergeTimeout, func() error {
		for _, p := range readLocalState(t, w).Managers {
			if p.Addr == m4.addr {
				return nil
			}
		}
		return fmt.Errorf("w1's state.json does not list the new manager m4 (%s)", m4.addr)
	})

	// Every manager it remembers is gone (as if all had moved): only the
	// provider it joined through, remembered in its state, still knows.
	w.Stop()
	waitDown(m2)
	st = readLocalState(t, w)
	raw := readAll(t, filepath.Join(w.dataDir, "swarm", "state.json"))
	for _, p := range st.Managers {
		raw = strings.ReplaceAll(raw, p.Addr, dead)
	}
	if err := os.WriteFile(filepath.Join(w.dataDir, "swarm", "state.json"), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	w.Start()
	eventually(t, convergeTimeout, readyOn(m2))
	if !strings.Contains(readAll(t, w.logPath), "trying the ones discovery lists now") {
		t.Error("w1 came back without asking its remembered discovery provider")
	}
}

type savedState struct {
	Discovery string
	Managers  []struct{ NodeID, Addr string }
}

func readLocalState(t *testing.T, n *node) savedState {
	t.Helper()
	var st savedState
	if err := json.Unmarshal([]byte(readAll(t, filepath.Join(n.dataDir, "swarm", "state.json"))), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
