package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/netrules"
)

// TestMeshKernelPath shows the published ports' kernel path through the
// real binary: a connection to the published port of the node that runs
// the task reaches it from the client's own address and port (DNAT, no
// proxy in between), one to another node comes from that node's relay;
// the node's DNAT chain is there while it runs and gone once its daemon
// stops.
func TestMeshKernelPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the kernel path is nat rules")
	}
	bin, err := netrules.Detect()
	if err != nil {
		t.Skipf("needs iptables: %v", err)
	}
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	port := uint32(freePort(t))
	spec := meshServiceSpec("web", app, port, 1, nil)
	spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.role==worker"}}
	status, body, err := m1.apiRequest(http.MethodPost, "/services/create", spec)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create web: %d %s %v", status, body, err)
	}
	m1.waitRunning(t, "web", 1, convergeTimeout, nil)

	chain := netrules.NodeChain(w1.id) + "-P"
	nat := func() string {
		out, err := exec.Command(bin, "-w", "-t", "nat", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("%s -t nat -S: %v: %s", bin, err, out)
		}
		return string(out)
	}
	// On the task's node: the task sees the client's own address.
	eventually(t, convergeTimeout, func() error {
		for range 5 {
			a, err := askMesh(w1.publishHost, port)
			if err != nil {
				return err
			}
			local := a.conn.LocalAddr().String()
			a.conn.Close()
			if a.node != w1.id || a.client != local {
				return fmt.Errorf("through %s: answered by node %s seeing client %s; want w1's task seeing %s (the kernel path)", w1, a.node, a.client, local)
			}
		}
		return nil
	})
	if rules := nat(); !strings.Contains(rules, "-A "+chain+" -d "+w1.publishHost+"/32 -p tcp") || !strings.Contains(rules, "-j DNAT") {
		t.Fatalf("no DNAT rule in %s:\n%s", chain, rules)
	}
	// Through the manager: relayed, so the task sees the relay. (Its
	// table may come a moment after w1's.)
	var a meshAnswer
	eventually(t, convergeTimeout, func() (err error) {
		a, err = askMesh(m1.publishHost, port)
		return err
	})
	if local := a.conn.LocalAddr().String(); a.node != w1.id || a.client == local {
		t.Errorf("through m1: answered by %s seeing client %s (ours %s); want w1's task, through the relay", a.node, a.client, local)
	}
	a.conn.Close()

	// A stopped daemon serves nothing: its rules go with it.
	w1.Stop()
	if rules := nat(); strings.Contains(rules, chain) {
		t.Fatalf("w1 stopped, its chain is left:\n%s", rules)
	}
}
