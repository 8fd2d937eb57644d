// Package agent is the worker side of a node: it keeps a session with the
// managers (heartbeats now; task assignments come with services), follows
// the manager list it is given, and moves to another manager by itself
// when the one it talks to dies.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/mesh"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// Caller is the part of nodeapi.Client the session needs.
type Caller interface {
	Call(ctx context.Context, addr, path string, in, out any) error
}

// Hooks let the daemon react to what the managers say.
type Hooks struct {
	// Managers is called with the current manager list after each beat.
	Managers func([]swarm.Peer)
	// Role is called when the managers want this node in another role.
	Role func(swarm.NodeRole)
	// Removed is called once when the managers say the node was removed
	// (nodeapi.ErrNodeRemoved).
	Removed func(error)
	// Routes is called with each new routing table from the managers
	// (after the mesh has it).
	Routes func(nodeapi.RoutesResponse)
	// Refresh returns the addresses to try after every manager failed in
	// a row (a manager node also knows the Raft members).
	Refresh func() []string
}

// Session heartbeats to one manager at a time, and stays with it while it
// answers: any manager serves a node's session (a follower relays to the
// leader), so nodes spread over the managers and a failover moves only
// the nodes of the manager that failed.
type Session struct {
	NodeID   string
	Addr     string // this node's advertise address
	Describe func() swarm.NodeDescription
	Client   Caller
	Hooks    Hooks
	Log      *slog.Logger
	// Executor runs the node's tasks; nil for a session without tasks.
	Executor *Executor
	// Mesh is the node's routing mesh, fed with the managers' table; nil
	// for none.
	Mesh *mesh.Mesh

	// assigned is the store index of the latest assignments, sent with
	// status reports.
	assigned atomic.Uint64

	mu       sync.Mutex
	moved    chan struct{}
	managers []string
	current  int
	lastOK   time.Time
	lastErr  error
}

// SetManagers replaces the addresses the session may talk to. It stays
// with its current manager if that is still listed, unless that was the
// only one it knew (the one it joined through): then it takes the first of
// the new list, its own place among the managers.
func (s *Session) SetManagers(addrs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := ""
	if s.current < len(s.managers) {
		cur = s.managers[s.current]
	}
	keep := len(s.managers) > 1
	s.managers = append([]string(nil), addrs...)
	s.current = 0
	if i := slices.Index(s.managers, cur); keep && i >= 0 {
		s.current = i
	}
	if cur != "" && len(s.managers) > 0 && s.managers[s.current] != cur {
		s.signalMoved()
	}
}

// Status reports when the last beat succeeded and the last error.
func (s *Session) Status() (lastOK time.Time, manager string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current < len(s.managers) {
		manager = s.managers[s.current]
	}
	return s.lastOK, manager, s.lastErr
}

func (s *Session) target() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.managers) == 0 {
		return "", false
	}
	return s.managers[s.current%len(s.managers)], true
}

// signalMoved tells the task loop its long-poll now goes to the wrong
// manager (mu held).
func (s *Session) signalMoved() {
	// Closed, not sent on: every long-poll (tasks, routes) must move.
	if s.moved != nil {
		close(s.moved)
	}
	s.moved = make(chan struct{})
}

func (s *Session) movedCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.moved == nil {
		s.moved = make(chan struct{})
	}
	return s.moved
}

// next moves to another manager after a failure; the long-polls follow.
func (s *Session) next() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.managers) > 1 {
		s.current = (s.current + 1) % len(s.managers)
		s.signalMoved()
	}
}

// background runs loop until the returned stop is called.
func (s *Session) background(ctx context.Context, loop func(context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Run beats until ctx ends or the node is removed.
func (s *Session) Run(ctx context.Context) {
	if s.Executor != nil {
		defer s.background(ctx, s.runTasks)()
	}
	if s.Mesh != nil {
		defer s.background(ctx, s.runRoutes)()
		if s.Mesh.Between() {
			defer s.background(ctx, s.runPeers)()
		}
	}
	period := time.Second
	failures := 0
	leader := ""
	answered := "" // the manager that took the last beat
	held := ""     // the description hash it says the swarm holds
	for {
		wait := period
		addr, ok := s.target()
		if ok {
			known := ""
			if addr == answered {
				known = held
			}
			resp, err := s.beat(ctx, addr, beatTimeout(period, addr == answered), known)
			s.mu.Lock()
			s.lastErr = err
			if err == nil {
				// The first beat makes the node known to the managers: the
				// long-polls that failed before it, now backing off, go
				// again at once (a new manager's published ports open
				// without waiting out the backoff).
				if s.lastOK.IsZero() {
					s.signalMoved()
				}
				s.lastOK = time.Now()
			}
			s.mu.Unlock()
			answered, held = "", ""
			switch {
			case err == nil:
				answered, held = addr, resp.DescriptionHash
				failures = 0
				if resp.Period > 0 {
					period = resp.Period
				}
				wait = jitter(period)
				if s.Hooks.Managers != nil && len(resp.Managers) > 0 {
					s.Hooks.Managers(resp.Managers)
				}
				if s.Hooks.Role != nil && resp.Role != "" {
					s.Hooks.Role(resp.Role)
				}
				if resp.Leader != "" && leader != "" && resp.Leader != leader && s.Executor != nil {
					s.Executor.ResendAll()
				}
				if resp.Leader != "" {
					leader = resp.Leader
				}
			case errors.Is(err, nodeapi.ErrNodeRemoved):
				// Only the removal answer: another Forbidden (a
				// certificate problem, a manager misconfigured) must not
				// make the node drop its tasks; it is retried as any
				// failure.
				s.Log.Error("the managers say this node was removed", "err", err)
				if s.Hooks.Removed != nil {
					s.Hooks.Removed(err)
				}
				return
			default:
				// Try the next manager at once; back off only once every
				// manager has failed in a row.
				failures++
				s.Log.Debug("heartbeat failed", "manager", addr, "err", err)
				s.next()
				// Randomised: after a manager fails, its nodes must not all
				// arrive at the next one in the same instant (TLS
				// handshakes of thousands of nodes at once).
				wait = retryAfter(failures, 50*time.Millisecond, period)
				if n := s.count(); failures >= n {
					if s.Hooks.Refresh != nil && failures%n == 0 {
						if addrs := s.Hooks.Refresh(); len(addrs) > 0 {
							s.SetManagers(addrs)
						}
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (s *Session) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(1, len(s.managers))
}

// beatTimeout bounds one heartbeat. To the manager that answered the
// last one, a beat that hangs (the manager frozen, cut off, or a follower
// that cannot reach the leader) is given up in time for the next manager
// to take one before the node would be marked Down (MissedBeats = 3
// periods after the last beat). To another manager the beat may need a
// new connection, whose TLS handshake can take seconds when thousands of
// nodes reconnect at once: cut short, it would start again from nothing
// each time and never finish.
func beatTimeout(period time.Duration, sameManager bool) time.Duration {
	if sameManager {
		return max(period*3/2, 300*time.Millisecond)
	}
	return max(period*3/2, 5*time.Second)
}

// beat sends one heartbeat. The description goes only when it differs
// from known, what the manager's last answer said the swarm holds ("" when
// that manager did not say, or this is another manager): a new manager,
// one of an earlier version or one whose replica lags all get it.
func (s *Session) beat(ctx context.Context, addr string, timeout time.Duration, known string) (nodeapi.HeartbeatResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := nodeapi.HeartbeatRequest{Addr: s.Addr}
	if desc := s.Describe(); known == "" || nodeapi.DescriptionHash(desc) != known {
		req.Description = &desc
	}
	var resp nodeapi.HeartbeatResponse
	err := s.Client.Call(ctx, addr, nodeapi.PathHeartbeat, req, &resp)
	return resp, err
}

// spread picks a wait between half of d and d, so that nodes retrying
// after the same failure do not retry together.
func spread(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)/2+1))
}

// retryAfter is the wait before the next try after failures in a row:
// about first after one (a manager died: its nodes must move on fast),
// then doubling up to limit, randomised. Thousands of nodes that fail together
// (a failover, an overloaded manager) thus back off rather than add
// connections to the load that made them fail.
func retryAfter(failures int, first, limit time.Duration) time.Duration {
	d := first
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return spread(min(d, limit))
}

// jitter spreads beats of many nodes over time (90%-100% of the period).
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}
