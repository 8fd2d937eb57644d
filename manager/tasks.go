package manager

import (
	"context"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

func (m *Manager) kickOrchestrator() { m.orch.Kick() }

// Routes answers a node's long-poll for the routing mesh's table.
func (m *Manager) Routes(ctx context.Context, nodeID string, req nodeapi.RoutesRequest) (nodeapi.RoutesResponse, error) {
	if err := m.caughtUp(ctx, req.Index); err != nil {
		return nodeapi.RoutesResponse{}, err
	}
	if _, err := m.liveNode(nodeID); err != nil {
		return nodeapi.RoutesResponse{}, err
	}
	return m.disp.Routes(ctx, req.Known), nil
}

// Peers answers a node's long-poll for the nodes' addresses.
func (m *Manager) Peers(ctx context.Context, nodeID string, req nodeapi.PeersRequest) (nodeapi.PeersResponse, error) {
	if err := m.caughtUp(ctx, req.Index); err != nil {
		return nodeapi.PeersResponse{}, err
	}
	if _, err := m.liveNode(nodeID); err != nil {
		return nodeapi.PeersResponse{}, err
	}
	return m.disp.Peers(ctx, req.Known), nil
}

// Assignments is a node's long-poll for its tasks, answered by any
// manager from its replica.
func (m *Manager) Assignments(ctx context.Context, nodeID string, req nodeapi.AssignmentsRequest) (nodeapi.AssignmentsResponse, error) {
	if err := m.caughtUp(ctx, req.Index); err != nil {
		return nodeapi.AssignmentsResponse{}, err
	}
	if _, err := m.liveNode(nodeID); err != nil {
		return nodeapi.AssignmentsResponse{}, err
	}
	return m.disp.Assignments(ctx, nodeID, req.Known), nil
}

// TaskStatus takes a node's task status reports (leader only).
func (m *Manager) TaskStatus(ctx context.Context, nodeID string, req nodeapi.TaskStatusRequest) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	if err := m.caughtUp(ctx, req.Index); err != nil {
		return err
	}
	if _, err := m.liveNode(nodeID); err != nil {
		return err
	}
	m.disp.TaskStatus(nodeID, req.Updates)
	return nil
}

// caughtUp waits (bounded) until this manager's replica has applied index:
// a node that moves between managers must not be answered from an older
// state than the one it already acted on.
func (m *Manager) caughtUp(ctx context.Context, index uint64) error {
	if m.store.Index() >= index {
		return nil // the usual case: no timer for it
	}
	timer := time.NewTimer(catchUpWait)
	defer timer.Stop()
	for {
		changed := m.store.Changed()
		have := m.store.Index()
		if have >= index {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return errdefs.Unavailable("this manager's replica (index %d) is behind the state the node already has (index %d): try another manager", have, index)
		}
	}
}

// catchUpWait bounds caughtUp: a follower cut off from the leader does
// not catch up, and the node should move on well before its long-poll
// gives up.
const catchUpWait = 5 * time.Second
