package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

// ErrLeadershipMoved means this manager handed leadership over (to demote
// itself) and the request must be retried on the new leader.
var ErrLeadershipMoved = errors.New("leadership moved to another manager; retry there")

// Nodes returns every node as the API shows it, with the leader marked.
func (m *Manager) Nodes() []swarm.Node {
	leaderID, _ := m.raft.Leader()
	nodes := m.store.Nodes()
	var tlsInfo swarm.TLSInfo
	if c, err := m.Cluster(); err == nil {
		tlsInfo = clusterTLSInfo(c)
	}
	out := make([]swarm.Node, 0, len(nodes))
	for _, n := range nodes {
		w := n.Copy().Node
		w.Spec.Labels = wireLabels(w.Spec.Labels)
		w.Description.TLSInfo = tlsInfo
		if w.ManagerStatus != nil && w.ID == leaderID {
			w.ManagerStatus.Leader = true
			w.ManagerStatus.Reachability = swarm.ReachabilityReachable
		}
		out = append(out, w)
	}
	return out
}

// quorum is the number of voters needed for a majority of n.
func quorum(n int) int { return n/2 + 1 }

// reachableVoters counts voters that are reachable now, excluding skip.
func (m *Manager) reachableVoters(servers []raft.Server, skip string) (total, reachable int) {
	for _, s := range servers {
		id := string(s.ID)
		if s.Suffrage != raft.Voter || id == skip {
			continue
		}
		total++
		if m.reachable(id) {
			reachable++
		}
	}
	return total, reachable
}

// UpdateNode applies a node spec: availability, labels, and role changes.
// Demotion takes the node out of Raft first, refusing when that would lose
// quorum; demoting the leader hands leadership over first.
func (m *Manager) UpdateNode(ctx context.Context, id string, version uint64, spec swarm.NodeSpec) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	if err := checkAvailability(spec.Availability); err != nil {
		return err
	}
	if spec.Role != swarm.NodeRoleManager && spec.Role != swarm.NodeRoleWorker {
		return errdefs.Invalid("invalid role %q: it must be manager or worker", spec.Role)
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	cur := m.store.Node(id)
	if cur == nil {
		return errdefs.NotFound("node %s not found", id)
	}
	if cur.Version.Index != version {
		return errdefs.Conflict("update out of sequence: node %s is at version %d, not %d; inspect it again and retry", id, cur.Version.Index, version)
	}
	u := cur.Copy()
	u.Spec = spec
	if cur.Spec.Role == swarm.NodeRoleManager && spec.Role == swarm.NodeRoleWorker {
		if err := m.demoteChecks(id); err != nil {
			return err
		}
		if leaderID, _ := m.raft.Leader(); leaderID == id {
			if err := m.raft.Raft.LeadershipTransfer().Error(); err != nil {
				return errdefs.Unavailable("cannot hand leadership over before demoting this manager: %v", err)
			}
			return ErrLeadershipMoved
		}
		if err := m.removeVoter(id); err != nil {
			return err
		}
		u.ManagerStatus = nil
	}
	return m.propose(ctx, state.NewOp(state.TableNodes, state.ActionUpdate, u, version))
}

func (m *Manager) demoteChecks(id string) error {
	servers, err := m.raft.Servers()
	if err != nil {
		return err
	}
	isVoter := slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
	total, _ := m.reachableVoters(servers, "")
	if isVoter && total <= 1 {
		return errdefs.Invalid("attempting to demote the last manager of the swarm; promote another node first")
	}
	if !isVoter {
		return nil
	}
	left, reachable := m.reachableVoters(servers, id)
	if reachable < quorum(left) {
		return errdefs.Invalid("can't demote node %s: only %d of the remaining %d managers are reachable, fewer than the %d a quorum needs; bring the unreachable managers back first", id, reachable, left, quorum(left))
	}
	return nil
}

// RemoveNode deletes a node; its certificate is refused from then on.
func (m *Manager) RemoveNode(ctx context.Context, id string, force bool) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	n := m.store.Node(id)
	if n == nil {
		return errdefs.NotFound("node %s not found", id)
	}
	servers, _ := m.raft.Servers()
	inRaft := slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
	// The held role (n.Role) is not checked: a manager lost for good and
	// demoted never renews its certificate, yet must be removable.
	if n.Spec.Role == swarm.NodeRoleManager || inRaft {
		return errdefs.Invalid("node %s is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal", id)
	}
	if n.Status.State == swarm.NodeStateReady && !force {
		return errdefs.Invalid("node %s is not down and can't be removed; stop it first or use --force", id)
	}
	return m.deleteNode(ctx, n)
}

// deleteNode deletes a node that is no longer in Raft and refuses its
// certificate from then on; its tasks are cleaned up by the orchestrator
// as for any node that is gone. The caller holds writeMu.
func (m *Manager) deleteNode(ctx context.Context, n *state.Node) error {
	c, err := m.Cluster()
	if err != nil {
		return err
	}
	cu := c.Copy()
	cu.RemovedNodes = append(cu.RemovedNodes, n.ID)
	if err := m.propose(ctx,
		state.NewOp(state.TableNodes, state.ActionDelete, n, 0),
		state.NewOp(state.TableCluster, state.ActionUpdate, cu, 0)); err != nil {
		return err
	}
	m.disp.Forget(n.ID)
	return nil
}

// LeaveCheck explains why this manager leaving would hurt the swarm; nil
// means it is safe. The daemon refuses swarm leave without --force on a
// manager, as Docker does, and shows this.
func (m *Manager) LeaveCheck(selfID string) error {
	servers, err := m.raft.Servers()
	if err != nil {
		return err
	}
	total, reachable := m.reachableVoters(servers, "")
	if total <= 1 {
		return errdefs.Unavailable("You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.")
	}
	left, leftReachable := m.reachableVoters(servers, selfID)
	msg := fmt.Sprintf("You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves %d managers out of %d.", left, total)
	if leftReachable < quorum(left) || reachable < quorum(total) {
		msg += " Without a Raft quorum your swarm will be inaccessible until enough managers are back online, or until it is reinitialized from a surviving manager with `--force-new-cluster`."
	}
	return errdefs.Unavailable("%s Use `--force` to suppress this message.", msg)
}
