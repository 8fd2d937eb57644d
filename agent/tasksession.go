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
	known := ""
	for ctx.Err() == nil {
		addr, ok := s.target()
		if !ok {
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		moved := s.movedCh()
		go func() {
			// Re-issue the long-poll when the session moves to the leader.
			select {
			case <-moved:
				cancel()
			case <-cctx.Done():
			}
		}()
		var resp nodeapi.AssignmentsResponse
		err := s.Client.Call(cctx, addr, nodeapi.PathAssignments, nodeapi.AssignmentsRequest{Known: known}, &resp)
		moveCancelled := cctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil && moveCancelled {
			continue
		}
		if err != nil {
			s.Log.Debug("assignments", "manager", addr, "err", err)
			sleepCtx(ctx, 200*time.Millisecond)
			continue
		}
		if resp.Fingerprint != known {
			s.Executor.Sync(resp.Tasks)
			known = resp.Fingerprint
		}
	}
	<-done
}

func (s *Session) reportLoop(ctx context.Context) {
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
		addr, ok := s.target()
		var err error
		if ok {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = s.Client.Call(cctx, addr, nodeapi.PathTaskStatus, nodeapi.TaskStatusRequest{Updates: updates}, nil)
			cancel()
		}
		if !ok || err != nil {
			s.Executor.Requeue(updates)
			sleepCtx(ctx, 200*time.Millisecond)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
