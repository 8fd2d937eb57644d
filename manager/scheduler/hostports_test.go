package scheduler

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

func hostPort(p uint32) taskOpt {
	return func(t *state.Task) {
		t.Ports = append(t.Ports, swarm.PortConfig{Protocol: "tcp", TargetPort: 80, PublishedPort: p, PublishMode: swarm.PortConfigPublishModeHost})
	}
}

// A port published in host mode is bound by the task on its node: no two
// tasks that publish it may share a node, whichever service they are of.
func TestHostModePortsOneTaskPerNode(t *testing.T) {
	nodes := []*state.Node{mkNode("a"), mkNode("b"), mkNode("c")}
	// c already runs another service's task on 8080.
	assigned := running("other", "c", 1, hostPort(8080))
	placed, unplaced := Place(nodes, assigned, tasks("web", 3, hostPort(8080)))
	if len(placed) != 2 || len(unplaced) != 1 {
		t.Fatalf("placed %v, unplaced %v; want 2 placed (a and b) and 1 left", placed, unplaced)
	}
	on := map[string]bool{}
	for _, n := range placed {
		on[n] = true
	}
	if !on["a"] || !on["b"] {
		t.Errorf("placed on %v; want a and b (c holds the port)", placed)
	}
	for _, why := range unplaced {
		if !strings.Contains(why, "host-mode port already in use on 3 nodes") {
			t.Errorf("unplaced because %q; want the host-mode port named", why)
		}
	}
	// Another port, or an ingress port, does not conflict.
	placed, unplaced = Place(nodes, assigned, tasks("api", 3, hostPort(9090)))
	if len(placed) != 3 || len(unplaced) != 0 {
		t.Errorf("tasks on another host port: placed %v, unplaced %v; want all 3 placed", placed, unplaced)
	}
}
