package orchestrator

import (
	"cmp"
	"slices"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// When a third or more of the nodes are Down at once (or about to be:
// silent past their last beat), the likelier cause is the managers
// (overloaded, or cut off from most nodes), not the nodes: replacing every task of every such node at once adds the work of a large
// redeploy to a cluster already failing to keep up, and the nodes, coming
// back, find their tasks moved. (Kubernetes stops evicting in a zone where
// most nodes are NotReady, for the same reason.) The nodes are still shown
// Down, which is true; only the replacement of their tasks is paced: one
// node's tasks every massDownRelease, the node Down longest first, until
// fewer than a third are Down. Measured: a two-core host converging 50,000
// tasks on 5,000 simulated nodes saw 2,363 nodes miss their beats within
// 11 s, and their 23,000 replacements tipped it over.
const (
	// massDownMinNodes: below it a node lost is a node lost.
	massDownMinNodes = 10
	massDownRelease  = 10 * time.Second
)

// downPacing is the orchestrator's memory of a mass Down: the nodes whose
// tasks it let go, and when it last let one go.
type downPacing struct {
	released map[string]bool
	last     time.Time
	holding  bool
}

// paceDown decides, for this pass, whose tasks on Down nodes may be
// replaced: v.replaceDown nil means every Down node's.
func (o *Orchestrator) paceDown(v *view) {
	var down []*state.Node
	for _, n := range v.nodes {
		if n.Status.State == swarm.NodeStateDown {
			down = append(down, n)
		}
	}
	p := &o.downPacing
	// Nodes that missed their last beat count too: when a third fall
	// silent over a few seconds, the first ones marked Down are fewer
	// than a third, and replacing their tasks at once was the larger part
	// of the damage (a 5,000-node wave: 19,142 replacements, about the
	// first third of the nodes, before the pacing held).
	late := 0
	if o.late != nil && len(down) > 0 {
		late = o.late()
	}
	mass := len(v.nodes) >= massDownMinNodes && 3*(len(down)+late) >= len(v.nodes)
	if mass != p.holding {
		p.holding = mass
		if mass {
			o.log.Warn("a third or more of the nodes are Down or silent at once: the managers may be the ones failing (overloaded, or cut off from the nodes); their tasks are replaced one node at a time",
				"down", len(down), "silent", late, "nodes", len(v.nodes), "every", massDownRelease)
		} else {
			o.log.Info("fewer than a third of the nodes are Down: their tasks are replaced at once again", "down", len(down), "nodes", len(v.nodes))
		}
	}
	if !mass {
		p.released = nil
		return
	}
	if p.released == nil {
		p.released = map[string]bool{}
	}
	for id := range p.released {
		if n := v.nodes[id]; n == nil || n.Status.State != swarm.NodeStateDown {
			delete(p.released, id) // back, or gone: decided afresh next time
		}
	}
	if v.now.Sub(p.last) >= massDownRelease {
		slices.SortFunc(down, func(a, b *state.Node) int {
			if c := a.StateSince.Compare(b.StateSince); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		})
		for _, n := range down {
			if !p.released[n.ID] {
				p.released[n.ID] = true
				p.last = v.now
				break
			}
		}
	}
	v.replaceDown = p.released
	if len(p.released) < len(down) { // someone still waits for a turn
		v.wakeAt(p.last.Add(massDownRelease))
	}
}

// mayReplace tells whether the tasks of a Down node may be replaced in
// this pass.
func (v *view) mayReplace(nodeID string) bool {
	return v.replaceDown == nil || v.replaceDown[nodeID]
}
