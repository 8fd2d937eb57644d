package manager

import (
	"context"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/jointoken"
)

// Bootstrap writes the first cluster and node objects after swarm init.
func (m *Manager) Bootstrap(ctx context.Context, c *state.Cluster, n *state.Node) error {
	if err := m.WaitLeader(ctx); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if m.store.Cluster() != nil {
		return nil // already written before a restart
	}
	m.disp.Heartbeat(n.ID, n.Addr, nil) // its description is written with it
	ingress, err := newIngress(m.store.View())
	if err != nil {
		return err
	}
	c.IngressMade = true
	return m.propose(ctx,
		state.NewOp(state.TableCluster, state.ActionCreate, c, 0),
		state.NewOp(state.TableNodes, state.ActionCreate, n, 0),
		state.NewOp(state.TableNetworks, state.ActionCreate, ingress, 0))
}

// Cluster returns the cluster object or ErrNotInSwarm before it exists.
func (m *Manager) Cluster() (*state.Cluster, error) {
	c := m.store.Cluster()
	if c == nil {
		return nil, errdefs.Unavailable("the cluster state is not replicated to this manager yet; retry in a moment")
	}
	return c, nil
}

// UpdateFlags are swarm update's rotations.
type UpdateFlags struct {
	RotateWorkerToken, RotateManagerToken, RotateUnlockKey bool
}

// UpdateSwarm replaces the cluster spec and rotates tokens; version must be
// the cluster's current version.
func (m *Manager) UpdateSwarm(ctx context.Context, version uint64, spec swarm.Spec, f UpdateFlags) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	if err := validateSpec(spec); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	cur, err := m.Cluster()
	if err != nil {
		return err
	}
	c := cur.Copy()
	if err := TakeNodeDownRemoval(c, &spec); err != nil {
		return err
	}
	c.Spec = spec
	if c.Spec.Name == "" {
		c.Spec.Name = "default"
	}
	if f.RotateWorkerToken {
		if c.WorkerToken, err = jointoken.Generate(caDER(c)); err != nil {
			return err
		}
	}
	if f.RotateManagerToken {
		if c.ManagerToken, err = jointoken.Generate(caDER(c)); err != nil {
			return err
		}
	}
	if err := setUnlockKey(c, f.RotateUnlockKey); err != nil {
		return err
	}
	return m.propose(ctx, state.NewOp(state.TableCluster, state.ActionUpdate, c, version))
}

func validateSpec(s swarm.Spec) error {
	if s.Dispatcher.HeartbeatPeriod < 0 {
		return errdefs.Invalid("invalid dispatcher heartbeat period %s: it must be positive", s.Dispatcher.HeartbeatPeriod)
	}
	if s.Orchestration.TaskHistoryRetentionLimit != nil && *s.Orchestration.TaskHistoryRetentionLimit < 0 {
		return errdefs.Invalid("invalid task history retention limit %d: it must be 0 or more", *s.Orchestration.TaskHistoryRetentionLimit)
	}
	if s.CAConfig.NodeCertExpiry < 0 {
		return errdefs.Invalid("invalid node certificate expiry %s: it must be positive", s.CAConfig.NodeCertExpiry)
	}
	return nil
}

// Swarm returns the cluster as the API shows it, join tokens included.
func (m *Manager) Swarm() (swarm.Swarm, error) {
	c, err := m.Cluster()
	if err != nil {
		return swarm.Swarm{}, err
	}
	info := PublicClusterInfo(c)
	return swarm.Swarm{ClusterInfo: info, JoinTokens: swarm.JoinTokens{Worker: c.WorkerToken, Manager: c.ManagerToken}}, nil
}

func caDER(c *state.Cluster) []byte {
	rc, err := rootOf(c)
	if err != nil {
		return nil
	}
	return rc.Cert.Raw
}
