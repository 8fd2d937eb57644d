package manager

import (
	"context"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

func (m *Manager) kickOrchestrator() { m.orch.Kick() }

// Routes answers a node's long-poll for the routing mesh's table.
func (m *Manager) Routes(ctx context.Context, nodeID string, req nodeapi.RoutesRequest) (nodeapi.RoutesResponse, error) {
	if err := m.requireLeader(); err != nil {
		return nodeapi.RoutesResponse{}, err
	}
	if _, err := m.liveNode(nodeID); err != nil {
		return nodeapi.RoutesResponse{}, err
	}
	return m.disp.Routes(ctx, req.Known), nil
}

// Assignments is a node's long-poll for its tasks (leader only).
func (m *Manager) Assignments(ctx context.Context, nodeID string, req nodeapi.AssignmentsRequest) (nodeapi.AssignmentsResponse, error) {
	if err := m.requireLeader(); err != nil {
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
	if _, err := m.liveNode(nodeID); err != nil {
		return err
	}
	m.disp.TaskStatus(nodeID, req.Updates)
	return nil
}
