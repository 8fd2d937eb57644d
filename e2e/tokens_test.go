package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestJoinTokens rotates the join tokens and tries bad ones: a
// rotated-away token, a token whose CA digest is wrong and malformed
// tokens are refused with a clear error and change nothing, on the cluster
// or on the refused node; the new tokens work.
func TestJoinTokens(t *testing.T) {
	c := newCluster(t, 1, 0)
	m1 := c.managers[0]
	token := func(role string) string {
		return strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", role))
	}
	oldWorker, oldManager := token("worker"), token("manager")

	out := m1.mustCLI(t, "swarm", "join-token", "--rotate", "-q", "worker")
	newWorker := token("worker")
	if strings.TrimSpace(out) != newWorker {
		t.Errorf("join-token --rotate -q printed %q; join-token -q now says %q", out, newWorker)
	}
	if newWorker == oldWorker {
		t.Fatal("rotating the worker token did not change it")
	}
	if token("manager") != oldManager {
		t.Error("rotating the worker token changed the manager token")
	}
	m1.mustCLI(t, "swarm", "join-token", "--rotate", "manager")
	newManager := token("manager")
	if newManager == oldManager {
		t.Fatal("rotating the manager token did not change it")
	}

	x := c.spare("x")
	refused := func(what, tok string, words ...string) {
		t.Helper()
		r := x.cliTimeout(cliTimeout, "swarm", "join", "--token", tok, "--listen-addr", x.addr, m1.addr)
		if r.err == nil {
			t.Fatalf("join with %s succeeded", what)
		}
		if !containsAny(r.stderr, words...) {
			t.Errorf("join with %s: the error should mention %s, got %q", what, strings.Join(words, " or "), r.stderr)
		}
		t.Logf("join with %s: %s", what, strings.TrimSpace(r.stderr))
		si, err := x.swarmInfo()
		if err != nil {
			t.Fatal(err)
		}
		if si.LocalNodeState != "inactive" || si.NodeID != "" {
			t.Errorf("after the refused join with %s, x is %+v, want outside any swarm", what, si)
		}
		rows, err := m1.rows()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 {
			t.Errorf("after the refused join with %s the swarm lists %v", what, rows)
		}
	}
	refused("the rotated-away worker token", oldWorker, "token")
	refused("the rotated-away manager token", oldManager, "token")
	refused("a token with a wrong CA digest", wrongDigest(t, newWorker), "digest", "root ca", "certificate authority")
	refused("a truncated token", "SWMTKN-1-garbage", "token")
	refused("a token of the wrong shape", "not-a-token", "token")
	refused("a token with the wrong version", strings.Replace(newWorker, "SWMTKN-1-", "SWMTKN-9-", 1), "token")

	// The current tokens work, on the very daemons that were refused.
	out = x.mustCLI(t, "swarm", "join", "--token", newWorker, "--listen-addr", x.addr, m1.addr)
	if !strings.Contains(out, "joined a swarm as a worker") {
		t.Errorf("join printed %q", out)
	}
	y := c.spare("y")
	y.mustCLI(t, "swarm", "join", "--token", newManager, "--listen-addr", y.addr, m1.addr)
	for _, n := range []*node{x, y} {
		si, err := n.swarmInfo()
		if err != nil {
			t.Fatal(err)
		}
		n.id = si.NodeID
	}
	eventually(t, convergeTimeout, rowsMatch(m1, func(m map[string]nodeRow) error {
		if m["x"].ID != x.id || m["x"].Status != "Ready" || m["x"].ManagerStatus != "" {
			return fmt.Errorf("x is not a Ready worker")
		}
		if m["y"].ID != y.id || m["y"].Status != "Ready" || m["y"].ManagerStatus != "Reachable" {
			return fmt.Errorf("y is not a Ready, reachable manager")
		}
		return nil
	}))
}

// wrongDigest returns tok with one character of its CA digest changed.
func wrongDigest(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, "-")
	if len(parts) != 4 || parts[0] != "SWMTKN" || parts[2] == "" {
		t.Fatalf("join token %q is not SWMTKN-1-<digest>-<secret>", tok)
	}
	d := []byte(parts[2])
	last := len(d) - 1
	if d[last] == '1' {
		d[last] = '2'
	} else {
		d[last] = '1'
	}
	parts[2] = string(d)
	return strings.Join(parts, "-")
}
