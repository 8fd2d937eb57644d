package agent

import (
	"context"
	"time"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// runTasks keeps the executor in step with the managers: a long-poll for
// the node's assignments, and a sender of status reports in batches.
func (s *Session) runTasks(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.reportLoop(ctx)
	}()
	s.longPoll(ctx, "assignments", func(ctx context.Context, addr string, known polled) (polled, error) {
		var resp nodeapi.AssignmentsResponse
		err := s.Client.Call(ctx, addr, nodeapi.PathAssignments, nodeapi.AssignmentsRequest{Known: known.fingerprint, Index: known.index}, &resp)
		if err == nil && resp.Fingerprint != known.fingerprint {
			s.Executor.Sync(resp.Tasks)
		}
		if err == nil {
			s.assigned.Store(max(s.assigned.Load(), resp.Index))
		}
		return polled{resp.Fingerprint, resp.Index}, err
	})
	<-done
}

// runRoutes keeps the routing mesh's table in step with the managers'.
func (s *Session) runRoutes(ctx context.Context) {
	s.longPoll(ctx, "routes", func(ctx context.Context, addr string, known polled) (polled, error) {
		var resp nodeapi.RoutesResponse
		err := s.Client.Call(ctx, addr, nodeapi.PathRoutes, nodeapi.RoutesRequest{Known: known.fingerprint, Index: known.index}, &resp)
		if err == nil && resp.Fingerprint != known.fingerprint {
			s.Mesh.Update(resp.Services)
			if s.Hooks.Routes != nil {
				s.Hooks.Routes(resp)
			}
		}
		return polled{resp.Fingerprint, resp.Index}, err
	})
}

// peersGap is the least time between two answers of the peers'
// long-poll: a wave of joins changes the list thousands of times.
const peersGap = time.Second

// runPeers keeps the mesh's list of the other nodes in step, for its
// kernel path between nodes.
func (s *Session) runPeers(ctx context.Context) {
	s.longPoll(ctx, "peers", func(ctx context.Context, addr string, known polled) (polled, error) {
		var resp nodeapi.PeersResponse
		err := s.Client.Call(ctx, addr, nodeapi.PathPeers, nodeapi.PeersRequest{Known: known.fingerprint, Index: known.index}, &resp)
		if err == nil && resp.Fingerprint != known.fingerprint {
			s.Mesh.SetPeers(resp.Peers)
			sleepCtx(ctx, peersGap)
		}
		return polled{resp.Fingerprint, resp.Index}, err
	})
}

// polled is what a node has of a long-polled answer: its fingerprint, and
// the store index it was built from (no manager answers from an older
// one).
type polled struct {
	fingerprint string
	index       uint64
}

// longPoll repeats a long-poll to the current manager until ctx ends: ask
// sends what the node has and returns the new answer's. A poll is re-issued
// at once when the session moves to another manager.
func (s *Session) longPoll(ctx context.Context, what string, ask func(ctx context.Context, addr string, known polled) (polled, error)) {
	var known polled
	failures := 0
	for ctx.Err() == nil {
		moved := s.movedCh()
		addr, ok := s.target()
		if !ok {
			sleepCtx(ctx, spread(200*time.Millisecond))
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		go func() {
			select {
			case <-moved:
				cancel()
			case <-cctx.Done():
			}
		}()
		got, err := ask(cctx, addr, known)
		moveCancelled := cctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil && moveCancelled {
			continue
		}
		if err != nil {
			s.Log.Debug(what, "manager", addr, "err", err)
			failures++
			s.sleepUnlessMoved(ctx, moved, retryAfter(failures, 200*time.Millisecond, retryLimit))
			continue
		}
		failures = 0
		known.fingerprint = got.fingerprint
		known.index = max(known.index, got.index)
	}
}

func (s *Session) reportLoop(ctx context.Context) {
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.Executor.Wake():
		case <-time.After(time.Second):
		}
		// Let a burst of changes gather into one report.
		sleepCtx(ctx, 20*time.Millisecond)
		updates := s.Executor.Reports()
		if len(updates) == 0 {
			continue
		}
		moved := s.movedCh()
		addr, ok := s.target()
		var err error
		if ok {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = s.Client.Call(cctx, addr, nodeapi.PathTaskStatus, nodeapi.TaskStatusRequest{Updates: updates, Index: s.assigned.Load()}, nil)
			cancel()
		}
		if !ok || err != nil {
			s.Executor.Requeue(updates)
			failures++
			s.sleepUnlessMoved(ctx, moved, retryAfter(failures, 200*time.Millisecond, retryLimit))
			continue
		}
		failures = 0
	}
}

// retryLimit bounds the wait between failed long-polls or status reports
// to one manager: the session moving to another ends the wait at once,
// so a longer wait costs nothing in a failover and spares a manager that
// is slow to answer (thousands of nodes retrying it).
const retryLimit = 5 * time.Second

// sleepUnlessMoved waits d, or until the session moves to another manager.
func (s *Session) sleepUnlessMoved(ctx context.Context, moved <-chan struct{}, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-moved:
	case <-time.After(d):
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
