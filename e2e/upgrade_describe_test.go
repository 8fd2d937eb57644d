package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestBareBeatsWithEarlierLeader: during a rolling upgrade the leader may
// still run a flotilla that reads a heartbeat without a description as a
// node that lost its hostname and resources. A new follower, whose own
// node and whose worker beat to it without their descriptions, fills them
// in when it relays to that leader: node inspect keeps showing them.
func TestBareBeatsWithEarlierLeader(t *testing.T) {
	requireE2E(t)
	old := buildBefore(t, "internal/nodeapi/describe.go", "bare heartbeats")
	c := &cluster{t: t, base: tempDir(t)}
	t.Cleanup(c.cleanup)
	m1, m2, w1 := c.newNode("m1"), c.newNode("m2"), c.newNode("w1")
	m1.bin = old
	for _, n := range c.nodes {
		n.Start()
	}
	m1.mustCLI(t, "swarm", "init", "--listen-addr", m1.addr)
	mgrToken := strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", "manager"))
	wkToken := strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", "worker"))
	m2.mustCLI(t, "swarm", "join", "--token", mgrToken, "--listen-addr", m2.addr, m1.addr)
	// Through m2 only: the worker's session starts there and stays while
	// m2 answers.
	w1.mustCLI(t, "swarm", "join", "--token", wkToken, "--listen-addr", w1.addr, m2.addr)
	for _, n := range c.nodes {
		si, err := n.swarmInfo()
		if err != nil {
			t.Fatal(err)
		}
		n.id = si.NodeID
	}
	described := func(n *node) error {
		out, _, err := m1.CLI("node", "inspect", "--format",
			"{{.Description.Hostname}} {{.Description.Resources.NanoCPUs}} {{.Status.State}}", n.id)
		if err != nil {
			return err
		}
		if f := strings.Fields(out); len(f) != 3 || f[0] != n.name || f[1] == "0" || f[2] != "ready" {
			return fmt.Errorf("the earlier leader shows %s as %q, want its hostname, CPUs, ready", n, strings.TrimSpace(out))
		}
		return nil
	}
	for _, n := range c.nodes {
		eventually(t, convergeTimeout, func() error { return described(n) })
	}
	// Ten more beats from each node, most of them bare towards m2: the
	// leader still shows every description, each time it is asked.
	start, err := m1.metrics()
	if err != nil {
		t.Fatal(err)
	}
	beats0, _ := start.sum("flotilla_dispatcher_heartbeats_total")
	eventually(t, convergeTimeout, func() error {
		for _, n := range c.nodes {
			if err := described(n); err != nil {
				t.Fatal(err)
			}
		}
		s, err := m1.metrics()
		if err != nil {
			return err
		}
		if beats, _ := s.sum("flotilla_dispatcher_heartbeats_total"); beats < beats0+30 {
			return fmt.Errorf("the leader took %v beats, waiting for 30", beats-beats0)
		}
		return nil
	})
}
