package manager

import (
	"context"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/orchestrator"
	"github.com/flotilla-org/flotilla/manager/scheduler"
	"github.com/flotilla-org/flotilla/manager/state"
)

func init() {
	ConstraintParser = func(exprs []string) error {
		_, err := scheduler.ParseConstraints(exprs)
		return err
	}
	orchestrator.Eligible = func(n *state.Node, s *state.Service) bool {
		if p := s.Spec.TaskTemplate.Placement; p != nil {
			cs, err := scheduler.ParseConstraints(p.Constraints)
			if err != nil || !scheduler.NodeMatches(cs, n) {
				return false
			}
		}
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			if d := cs.Labels[LabelDriver]; d != "" {
				return slices.ContainsFunc(n.Description.Engine.Plugins, func(p swarm.PluginDescription) bool {
					return strings.EqualFold(p.Type, scheduler.DriverPluginType) && p.Name == d
				})
			}
		}
		return true
	}
}

func (m *Manager) kickOrchestrator() { m.orch.Kick() }

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
