package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestNodeDescriptionKeptAndFollowed: nodes leave their description out
// of their heartbeats once the managers hold it. node inspect keeps
// showing every node's hostname and resources through many such beats,
// and a worker restarted under a new hostname shows it.
func TestNodeDescriptionKeptAndFollowed(t *testing.T) {
	c := newCluster(t, 3, 2)
	m1 := c.managers[0]
	described := func(n *node, hostname string) func() error {
		return func() error {
			out, _, err := m1.CLI("node", "inspect", "--format",
				"{{.Description.Hostname}} {{.Description.Resources.NanoCPUs}} {{.Description.Platform.OS}} {{.Status.State}}", n.id)
			if err != nil {
				return err
			}
			f := strings.Fields(out)
			if len(f) != 4 || f[0] != hostname || f[1] == "0" || f[2] != "linux" || f[3] != "ready" {
				return fmt.Errorf("%s is %q, want hostname %s, its CPUs, linux, ready", n, strings.TrimSpace(out), hostname)
			}
			return nil
		}
	}
	beatsAfter := func(more float64) {
		t.Helper()
		leader := c.mustLeader(m1)
		start := -1.0
		eventually(t, convergeTimeout, func() error {
			s, err := leader.metrics()
			if err != nil {
				return err
			}
			n, _ := s.sum("flotilla_dispatcher_heartbeats_total")
			if start < 0 {
				start = n
			}
			if n < start+more {
				return fmt.Errorf("the leader took %v beats, waiting for %v", n-start, more)
			}
			return nil
		})
	}

	beatsAfter(15) // three rounds of five nodes: all but the first bare
	for _, n := range c.nodes {
		eventually(t, convergeTimeout, described(n, n.name))
	}

	w1 := c.workers[0]
	w1.Kill9()
	w1.args = append(w1.args, "--hostname", "w1-renamed")
	w1.Start()
	eventually(t, convergeTimeout, described(w1, "w1-renamed"))
	beatsAfter(15)
	eventually(t, convergeTimeout, described(w1, "w1-renamed"))
	eventually(t, convergeTimeout, described(c.workers[1], c.workers[1].name))
}
