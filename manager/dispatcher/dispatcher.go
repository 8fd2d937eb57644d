// Package dispatcher runs on the leader: it takes every node's heartbeat,
// marks nodes Ready when they report and Down when they go quiet, and
// writes those changes to Raft in batches (one entry for many nodes).
package dispatcher

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/state"
)

// DefaultPeriod is how often nodes report. A node is Down after
// MissedBeats periods of silence: about 3 s, where swarm takes 15 s.
const (
	DefaultPeriod = time.Second
	MissedBeats   = 3
)

// Proposer replicates batches, in order.
type Proposer func(ctx context.Context, bs []state.Batch) error

// Dispatcher tracks node liveness. Heartbeat may be called at any time;
// Run does the leader-only work and returns when its context ends.
type Dispatcher struct {
	store   *state.Store
	propose Proposer
	log     *slog.Logger

	mu       sync.Mutex
	period   time.Duration
	lastSeen map[string]time.Time // when each node becomes late
	served   map[string]time.Time // nodes whose session this manager serves, until when
	reported map[string]report    // news to write: node came up or changed address
	statuses map[string]statusReport
	kick     chan struct{}
	metrics  *Metrics // nil: not counted

	routesMu    sync.Mutex
	routesAt    uint64 // the store index routesCache was built from
	routesCache nodeapi.RoutesResponse
	peersAt     uint64 // as routesAt, for peersCache (under routesMu)
	peersCache  nodeapi.PeersResponse
}

type report struct {
	addr string
	desc *swarm.NodeDescription // nil: the beat said it is unchanged
}

// New returns a dispatcher.
func New(store *state.Store, propose Proposer, log *slog.Logger) *Dispatcher {
	return &Dispatcher{store: store, propose: propose, log: log, period: DefaultPeriod,
		lastSeen: map[string]time.Time{}, served: map[string]time.Time{}, reported: map[string]report{}, statuses: map[string]statusReport{},
		kick: make(chan struct{}, 1)}
}

// Period is the heartbeat period nodes are told to use: the cluster spec's
// Dispatcher.HeartbeatPeriod when set.
func (d *Dispatcher) Period() time.Duration {
	if c := d.store.Cluster(); c != nil && c.Spec.Dispatcher.HeartbeatPeriod > 0 {
		return c.Spec.Dispatcher.HeartbeatPeriod
	}
	return DefaultPeriod
}

// Heartbeat records that a node is alive. It writes to Raft only when the
// node's recorded status must change, batched by Run.
// desc is nil when the node left it out as unchanged.
func (d *Dispatcher) Heartbeat(nodeID, addr string, desc *swarm.NodeDescription) {
	d.mu.Lock()
	// The node was told the current period with this beat; it is late
	// only after missing that many of those periods. (A shorter period set
	// a moment ago must not make every node late at once.)
	d.lastSeen[nodeID] = time.Now().Add(time.Duration(MissedBeats) * d.Period())
	d.metrics.heartbeat()
	n := d.store.Node(nodeID)
	if n != nil && needsUpdate(n, addr, desc) {
		if prev, ok := d.reported[nodeID]; ok && desc == nil {
			desc = prev.desc // a change not yet written stays
		}
		d.reported[nodeID] = report{addr: addr, desc: desc}
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
	d.mu.Unlock()
}

func needsUpdate(n *state.Node, addr string, desc *swarm.NodeDescription) bool {
	if n.Status.State != swarm.NodeStateReady || n.Status.Addr != hostOf(addr) {
		return true
	}
	if n.ManagerStatus != nil && n.ManagerStatus.Reachability != swarm.ReachabilityReachable {
		return true
	}
	// Any change the node reports, engine labels and plugins included:
	// constraints on engine labels follow them.
	return desc != nil && nodeapi.DescriptionHash(n.Description) != nodeapi.DescriptionHash(*desc)
}

// Run marks silent nodes Down and writes reported changes, until ctx ends.
// Every node starts with a full grace period when leadership begins, so a
// failover never marks healthy nodes Down.
func (d *Dispatcher) Run(ctx context.Context) {
	d.mu.Lock()
	first := time.Now().Add(time.Duration(MissedBeats) * d.Period())
	for _, n := range d.store.Nodes() {
		d.lastSeen[n.ID] = first
	}
	d.mu.Unlock()
	tick := time.NewTicker(d.Period() / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.kick:
			// Gather a wave of reports into one entry.
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
		b := d.pendingBatch()
		b.Ops = append(b.Ops, d.statusOps()...)
		// Bounded entries: status waves of thousands of tasks go in
		// several batches rather than one huge entry, proposed together so
		// Raft pipelines them.
		var chunks []state.Batch
		for len(b.Ops) > 0 {
			n := min(len(b.Ops), 1000)
			chunks = append(chunks, state.Batch{Ops: b.Ops[:n]})
			b.Ops = b.Ops[n:]
		}
		if len(chunks) > 0 {
			if err := d.propose(ctx, chunks); err != nil && ctx.Err() == nil {
				d.log.Warn("write node and task status", "err", err)
			}
		}
	}
}

func (d *Dispatcher) pendingBatch() state.Batch {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var b state.Batch
	for _, n := range d.store.Nodes() {
		r, reported := d.reported[n.ID]
		deadline, ok := d.lastSeen[n.ID]
		if !ok {
			// A node created since Run began.
			deadline = now.Add(time.Duration(MissedBeats) * d.Period())
			d.lastSeen[n.ID] = deadline
		}
		switch {
		case reported:
			var desc *swarm.NodeDescription // nil keeps the one held
			if r.desc != nil {
				d := n.Description
				d.Hostname = r.desc.Hostname
				d.Platform = r.desc.Platform
				d.Resources = r.desc.Resources
				d.Engine = r.desc.Engine
				desc = &d
			}
			b.Ops = append(b.Ops, state.NewPatch(state.TableNodes, n.ID, state.PatchNodeStatus, state.NodeStatus{
				Status:       swarm.NodeStatus{State: swarm.NodeStateReady, Addr: hostOf(r.addr)},
				Description:  desc,
				Reachability: swarm.ReachabilityReachable,
			}))
		case now.After(deadline) && n.Status.State != swarm.NodeStateDown:
			st := n.Status
			st.State = swarm.NodeStateDown
			st.Message = "heartbeat failure"
			b.Ops = append(b.Ops, state.NewPatch(state.TableNodes, n.ID, state.PatchNodeStatus, state.NodeStatus{
				Status: st, Reachability: swarm.ReachabilityUnreachable,
			}))
		}
	}
	d.reported = map[string]report{}
	return b
}

// Late counts the nodes that have missed their last beat (silent for
// MissedBeats-1 periods or more) and are not yet due Down: the nodes
// about to go Down.
// When a third of the nodes fall silent over a few seconds (the managers
// overloaded, or cut off from them), those marked Down first are not yet
// a third; the orchestrator counts these too before it replaces their
// tasks all at once (Orchestrator.SetLateNodes).
func (d *Dispatcher) Late() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.lastSeen) == 0 {
		return 0 // Run has not begun: not the leader
	}
	// Within a period of their deadline. Past it, a node is Down, or is
	// marked so at Run's next tick (a quarter period): counted as Down by
	// then. No store reads: the orchestrator asks on every pass.
	now := time.Now()
	edge := now.Add(d.Period())
	n := 0
	for _, deadline := range d.lastSeen {
		if deadline.After(now) && !deadline.After(edge) {
			n++
		}
	}
	return n
}

// Forget drops a removed node.
func (d *Dispatcher) Forget(nodeID string) {
	d.mu.Lock()
	delete(d.lastSeen, nodeID)
	delete(d.reported, nodeID)
	d.mu.Unlock()
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
