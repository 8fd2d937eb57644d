package manager

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/state"
)

// IsRemoved reports whether a node ID was removed from the cluster.
func (m *Manager) IsRemoved(nodeID string) bool {
	c := m.store.Cluster()
	return c != nil && slices.Contains(c.RemovedNodes, nodeID)
}

func (m *Manager) liveNode(nodeID string) (*state.Node, error) {
	if m.IsRemoved(nodeID) {
		return nil, nodeapi.ErrNodeRemoved
	}
	n := m.store.Node(nodeID)
	if n == nil {
		return nil, errdefs.NotFound("node %s is not known to this swarm", nodeID)
	}
	return n, nil
}

// Heartbeat takes a node's periodic report (leader only).
func (m *Manager) Heartbeat(ctx context.Context, nodeID string, req nodeapi.HeartbeatRequest) (nodeapi.HeartbeatResponse, error) {
	if err := m.requireLeader(); err != nil {
		return nodeapi.HeartbeatResponse{}, err
	}
	n, err := m.liveNode(nodeID)
	if err != nil {
		return nodeapi.HeartbeatResponse{}, err
	}
	m.takeBeat(n, req)
	m.disp.Serve(nodeID)
	return m.beatAnswer(n)
}

// FollowerHeartbeat answers a node's heartbeat on a follower, from its
// replica; the caller relays the beat itself to the leader.
func (m *Manager) FollowerHeartbeat(nodeID string) (nodeapi.HeartbeatResponse, error) {
	n, err := m.liveNode(nodeID)
	if err != nil {
		return nodeapi.HeartbeatResponse{}, err
	}
	m.disp.Serve(nodeID)
	return m.beatAnswer(n)
}

func (m *Manager) takeBeat(n *state.Node, req nodeapi.HeartbeatRequest) {
	m.disp.Heartbeat(n.ID, req.Addr, req.Description)
	if m.addrMoved(n, req.Addr) {
		m.followAddr(n.ID, req.Addr)
	}
}

func (m *Manager) beatAnswer(n *state.Node) (nodeapi.HeartbeatResponse, error) {
	leader, _ := m.Leader()
	if leader == "" {
		return nodeapi.HeartbeatResponse{}, errNoLeaderKnown
	}
	return nodeapi.HeartbeatResponse{Period: m.disp.Period(), Managers: m.Managers(), Role: n.Spec.Role,
		Leader:          fmt.Sprintf("%s/%d", leader, m.raft.Raft.CurrentTerm()),
		DescriptionHash: nodeapi.DescriptionHash(n.Description)}, nil
}

var errNoLeaderKnown = errdefs.Unavailable("this manager knows no leader (an election, or the quorum is lost): try another manager")

// Relayed takes the heartbeats and status reports a follower relays for
// its nodes (leader only). A node refused (removed, unknown) is named in
// the answer with its error; the rest are taken.
func (m *Manager) Relayed(ctx context.Context, req nodeapi.RelayRequest) (nodeapi.RelayResponse, error) {
	resp := nodeapi.RelayResponse{BareBeats: true}
	if err := m.requireLeader(); err != nil {
		return nodeapi.RelayResponse{}, err
	}
	refuse := func(to *map[string]nodeapi.Refusal, nodeID string, err error) {
		if *to == nil {
			*to = map[string]nodeapi.Refusal{}
		}
		(*to)[nodeID] = nodeapi.RefusalOf(err)
	}
	// Beats first, and never behind the reports' wait below: a node late
	// for its deadline would be marked Down.
	for _, b := range req.Beats {
		n, err := m.liveNode(b.Node)
		if err != nil {
			refuse(&resp.Refused, b.Node, err)
			continue
		}
		m.takeBeat(n, b.Beat)
	}
	caught := m.caughtUp(ctx, req.Index)
	for _, st := range req.Statuses {
		if caught != nil {
			refuse(&resp.StatusesRefused, st.Node, caught)
			continue
		}
		if _, err := m.liveNode(st.Node); err != nil {
			refuse(&resp.StatusesRefused, st.Node, err)
			continue
		}
		m.disp.TaskStatus(st.Node, st.Updates)
	}
	return resp, nil
}

// NodeDescription is the description this replica holds for a node (nil
// when it knows none): what a follower relays for a beat that left it out,
// to a leader that has not said it takes beats without one.
func (m *Manager) NodeDescription(nodeID string) *swarm.NodeDescription {
	if n := m.store.Node(nodeID); n != nil {
		d := n.Description
		return &d
	}
	return nil
}

// Renew signs a certificate for the node's desired role and records that
// the node now holds that role.
func (m *Manager) Renew(ctx context.Context, nodeID string, req nodeapi.RenewRequest) (nodeapi.RenewResponse, error) {
	if err := m.requireLeader(); err != nil {
		return nodeapi.RenewResponse{}, err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	n, err := m.liveNode(nodeID)
	if err != nil {
		return nodeapi.RenewResponse{}, err
	}
	c, err := m.Cluster()
	if err != nil {
		return nodeapi.RenewResponse{}, err
	}
	root, err := rootOf(c)
	if err != nil {
		return nodeapi.RenewResponse{}, err
	}
	role := n.Spec.Role
	host, _, _ := net.SplitHostPort(n.Addr)
	certPEM, err := root.IssueNodeCert(req.CSR, nodeID, string(role), c.ID, ipsOf(host), certExpiry(c))
	if err != nil {
		return nodeapi.RenewResponse{}, errdefs.Invalid("cannot sign the node's certificate request: %v", err)
	}
	if n.Role != role {
		nr := state.NodeRole{Role: role}
		if role == swarm.NodeRoleManager {
			nr.ManagerStatus = &swarm.ManagerStatus{Addr: n.Addr, Reachability: swarm.ReachabilityUnknown}
		}
		if err := m.propose(ctx, state.NewPatch(state.TableNodes, n.ID, state.PatchNodeRole, nr)); err != nil {
			return nodeapi.RenewResponse{}, err
		}
	}
	return nodeapi.RenewResponse{CertPEM: certPEM, Role: role}, nil
}

// RaftJoin adds a promoted or newly joined manager as a Raft voter; its
// Raft must already listen on addr.
func (m *Manager) RaftJoin(ctx context.Context, nodeID string, req nodeapi.RaftJoinRequest) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	n, err := m.liveNode(nodeID)
	if err != nil {
		return err
	}
	if n.Spec.Role != swarm.NodeRoleManager || n.Role != swarm.NodeRoleManager {
		return errdefs.Forbidden("node %s is not a manager; promote it first", nodeID)
	}
	addr := req.Addr
	if addr == "" {
		addr = n.Addr
	}
	f := m.raft.Raft.AddVoter(raft.ServerID(nodeID), raft.ServerAddress(addr), 0, 10*time.Second)
	if err := f.Error(); err != nil {
		return errdefs.Unavailable("adding manager %s to raft: %v", nodeID, err)
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	return m.propose(ctx, state.NewPatch(state.TableNodes, nodeID, state.PatchNodeRole, state.NodeRole{
		Role: swarm.NodeRoleManager, Addr: addr,
		ManagerStatus: &swarm.ManagerStatus{Addr: addr, Reachability: swarm.ReachabilityReachable},
	}))
}

// RaftLeave takes a manager that is leaving the swarm (swarm leave --force)
// out of Raft and records it as a worker that is down, so it can be removed
// with node rm.
func (m *Manager) RaftLeave(ctx context.Context, nodeID string) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if cur := m.store.Node(nodeID); cur != nil {
		st := cur.Status
		st.State, st.Message = swarm.NodeStateDown, "node left the swarm"
		if err := m.propose(ctx, state.NewPatch(state.TableNodes, nodeID, state.PatchNodeRole, state.NodeRole{
			Role: swarm.NodeRoleWorker, SpecRole: swarm.NodeRoleWorker, Status: &st,
		})); err != nil {
			return err
		}
		m.disp.Forget(nodeID)
	}
	return m.removeVoter(nodeID)
}

func (m *Manager) removeVoter(nodeID string) error {
	servers, err := m.raft.Servers()
	if err == nil && !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == nodeID }) {
		return nil // not a member (e.g. lost before a force-new-cluster)
	}
	f := m.raft.Raft.RemoveServer(raft.ServerID(nodeID), 0, 10*time.Second)
	if err := f.Error(); err != nil {
		return errdefs.Unavailable("removing manager %s from raft: %v", nodeID, err)
	}
	return nil
}
