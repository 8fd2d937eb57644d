// Package manager runs the manager role of a node: Raft, the replicated
// state, and the leader-only loops. Cluster operations (join, node updates,
// swarm updates) are methods here and must run on the leader; callers on a
// follower forward to the leader first.
package manager

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/dispatcher"
	"github.com/flotilla-org/flotilla/manager/orchestrator"
	"github.com/flotilla-org/flotilla/manager/raftnode"
	"github.com/flotilla-org/flotilla/manager/scheduler"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// Config configures a Manager.
type Config struct {
	NodeID     string
	Advertise  string // cluster port address other managers dial
	Dir        string // Raft data
	Listener   net.Listener
	DialTLS    func() *tls.Config
	AcceptPeer func(net.Conn) bool
	Bootstrap  bool
	DEK        *encryption.Key // seals the Raft data at rest
	Timing     raftnode.Timing
	// Log is the node's logger without a component: the manager gives
	// each of its parts (raft, dispatcher, orchestrator) its own.
	Log *slog.Logger
	// LeaderLoops run, each in its own goroutine, for as long as this
	// manager leads (e.g. publishing the cluster's managers elsewhere).
	LeaderLoops []func(ctx context.Context, m *Manager)
	// Metrics counts what the manager's parts do (nil: nothing).
	Metrics *Metrics
}

// Manager is one running manager.
type Manager struct {
	cfg   Config
	store *state.Store
	raft  *raftnode.Node
	reads readBarrier
	disp  *dispatcher.Dispatcher
	orch  *orchestrator.Orchestrator
	log   *slog.Logger

	// writeMu serialises read-check-propose sequences on the leader so two
	// API calls cannot both pass a check that only one may pass.
	writeMu sync.Mutex
	// moving holds the nodes whose new address is being recorded.
	moving sync.Map

	// ready is closed once this manager, as leader, has applied everything
	// its predecessors committed (the term's barrier); nil when not
	// leading. Until then its replica may lack acknowledged writes, so
	// neither its checks nor its reads may be trusted.
	readyMu sync.Mutex
	ready   chan struct{}

	// barrier, leading, leaderCh and raftTerm are the Raft calls
	// watchLeadership and lead() make, as fields so a test can make the
	// barrier fail or leadership come and go.
	barrier  func(time.Duration) error
	leading  func() bool
	leaderCh <-chan bool
	raftTerm func() uint64

	stop chan struct{}
	done chan struct{}
}

// Start opens Raft and begins following (or leading).
func Start(cfg Config) (*Manager, error) {
	store := state.NewStore()
	rn, err := raftnode.Open(raftnode.Config{
		NodeID: cfg.NodeID, Advertise: cfg.Advertise, Dir: cfg.Dir, Listener: cfg.Listener,
		DialTLS: cfg.DialTLS, AcceptPeer: cfg.AcceptPeer, Store: store, Bootstrap: cfg.Bootstrap, DEK: cfg.DEK,
		Timing: cfg.Timing, Log: cfg.Log.With("component", "raft"), Metrics: cfg.Metrics.raft(),
	})
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, store: store, raft: rn, log: cfg.Log.With("component", "manager"), stop: make(chan struct{}), done: make(chan struct{}),
		barrier: rn.Barrier, leading: rn.IsLeader, leaderCh: rn.Raft.LeaderCh(), raftTerm: rn.Raft.CurrentTerm}
	m.reads.commit = func() error { return rn.BarrierWithin(readBarrierTimeout) }
	m.disp = dispatcher.New(store, m.raft.ProposeAll, cfg.Log.With("component", "dispatcher"))
	m.orch = orchestrator.New(store, m.proposeChunked, scheduler.Scheduler{}, cfg.Log.With("component", "orchestrator"))
	m.orch.SetAddressLock(&m.writeMu) // service VIPs are allocated under writeMu
	m.orch.SetLateNodes(m.disp.Late)
	cfg.Metrics.attach(m)
	go m.watchLeadership()
	return m, nil
}

// Stop leaves leadership loops and shuts Raft down.
func (m *Manager) Stop() error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	<-m.done
	return m.raft.Shutdown()
}

// Store is the local replica of the cluster state (read-only for callers).
func (m *Manager) Store() *state.Store { return m.store }

// IsLeader reports whether this manager leads the cluster.
func (m *Manager) IsLeader() bool { return m.raft.IsLeader() }

// Leader returns the leader's node ID and cluster address, "" if none.
func (m *Manager) Leader() (id, addr string) { return m.raft.Leader() }

// Propose replicates a batch (leader only).
func (m *Manager) Propose(ctx context.Context, b state.Batch) error {
	return m.raft.Propose(ctx, b)
}

func (m *Manager) propose(ctx context.Context, ops ...state.Op) error {
	return m.raft.Propose(ctx, state.Batch{Ops: ops})
}

// Managers lists the Raft members as peers.
func (m *Manager) Managers() []swarm.Peer {
	servers, err := m.raft.Servers()
	if err != nil {
		return nil
	}
	out := make([]swarm.Peer, 0, len(servers))
	for _, s := range servers {
		out = append(out, swarm.Peer{NodeID: string(s.ID), Addr: string(s.Address)})
	}
	return out
}

// WaitLeader waits until some manager leads, up to timeout.
func (m *Manager) WaitLeader(ctx context.Context) error {
	for {
		if id, _ := m.raft.Leader(); id != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return raftnode.ErrNoLeader
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// watchLeadership starts the leader-only loops on election and stops them
// on loss: the one place where leader work begins and ends.
func (m *Manager) watchLeadership() {
	defer close(m.done)
	var term *leaderTerm
	defer func() { term.end() }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.leaderCh:
		case <-tick.C:
		}
		leading := m.leading()
		switch {
		case leading && term == nil:
			term = m.beginTerm()
		case leading && m.raftTerm() != term.raftTerm:
			// Lost and regained between two looks (LeaderCh keeps only
			// the latest value): a new term needs its own barrier.
			m.endTerm(term)
			term = m.beginTerm()
		case !leading && term != nil:
			m.endTerm(term)
			term = nil
		}
	}
}

// leaderTerm is one stretch of leadership and its loops.
type leaderTerm struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	raftTerm uint64
}

func (m *Manager) beginTerm() *leaderTerm {
	ctx, cancel := context.WithCancel(context.Background())
	t := &leaderTerm{cancel: cancel, raftTerm: m.raftTerm()}
	m.readyMu.Lock()
	m.ready = make(chan struct{})
	m.readyMu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		m.lead(ctx)
	}()
	return t
}

func (t *leaderTerm) end() {
	if t == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
}

// endTerm ends a term and forgets its readiness.
func (m *Manager) endTerm(t *leaderTerm) {
	t.end()
	m.readyMu.Lock()
	m.ready = nil
	m.readyMu.Unlock()
}

// lead runs while this manager is leader.
func (m *Manager) lead(ctx context.Context) {
	// Read everything the previous leader committed before acting on it.
	if !m.awaitBarrier(ctx) {
		return // leadership ended first
	}
	m.readyMu.Lock()
	if m.ready != nil {
		close(m.ready)
	}
	m.readyMu.Unlock()
	m.log.Info("this manager is now the leader")
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); m.makeIngress(ctx) }()
	go func() { defer wg.Done(); m.disp.Run(ctx) }()
	go func() { defer wg.Done(); m.orch.Run(ctx) }()
	go func() { defer wg.Done(); m.removeDownNodes(ctx) }()
	for _, loop := range m.cfg.LeaderLoops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx, m) }()
	}
	wg.Wait()
}

// awaitBarrier runs the term's barrier until it passes, retrying with
// backoff while this manager still leads: a leader whose barrier failed
// once used to stay leader with no orchestrator or dispatcher, refusing
// every write until leadership changed. It reports whether it passed.
func (m *Manager) awaitBarrier(ctx context.Context) bool {
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := m.barrier(5 * time.Second)
		if err == nil {
			return true
		}
		if ctx.Err() != nil || !m.leading() {
			return false
		}
		m.log.Warn("leader barrier failed; retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// requireLeader returns ErrNoLeader-like errors on a follower. A leader
// just elected first waits for its barrier, so that its checks (name in
// use, current version) see every write its predecessors acknowledged.
func (m *Manager) requireLeader() error {
	if !m.raft.IsLeader() {
		// Requests are forwarded to the leader before they get here; this
		// one lost its leadership in between.
		return errdefs.Unavailable("this manager is no longer the leader; the request was not applied: retry")
	}
	return m.waitReady()
}

// waitReady waits (bounded) until this leader's term barrier has passed.
func (m *Manager) waitReady() error {
	m.readyMu.Lock()
	ready := m.ready
	m.readyMu.Unlock()
	timer := time.NewTimer(raftnode.DefaultTiming.ApplyTimeout)
	defer timer.Stop()
	for ready == nil {
		// Elected a moment ago: watchLeadership has not begun the term.
		select {
		case <-timer.C:
			return raftnode.ErrNoLeader
		case <-time.After(10 * time.Millisecond):
		}
		if !m.raft.IsLeader() {
			return raftnode.ErrNoLeader
		}
		m.readyMu.Lock()
		ready = m.ready
		m.readyMu.Unlock()
	}
	select {
	case <-ready:
		return nil
	case <-timer.C:
		return raftnode.ErrNoLeader
	}
}

// VerifyRead tells whether this manager may answer a read from its replica
// as the leader: it leads, has applied its predecessors' writes, and a
// quorum still follows it in its term (a leader paused or cut off may not
// know yet that another was elected): a barrier begun after the call has
// committed and is applied.
func (m *Manager) VerifyRead() bool {
	if !m.raft.IsLeader() || m.waitReady() != nil {
		return false
	}
	return m.reads.wait() == nil
}

// WaitNewLeader waits until another manager leads (after a handover).
func (m *Manager) WaitNewLeader(ctx context.Context) error {
	for {
		if id, _ := m.raft.Leader(); id != "" && id != m.cfg.NodeID {
			return nil
		}
		select {
		case <-ctx.Done():
			return raftnode.ErrNoLeader
		case <-time.After(20 * time.Millisecond):
		}
	}
}
