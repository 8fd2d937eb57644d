package manager

import (
	"context"
	"net"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/ids"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/ca"
	"github.com/flotilla-org/flotilla/security/jointoken"
)

// DefaultCertExpiry is the node certificate lifetime, as swarm's.
const DefaultCertExpiry = 90 * 24 * time.Hour

func rootOf(c *state.Cluster) (*ca.RootCA, error) {
	return ca.ParseRootCA(c.RootCACertPEM, c.RootCAKeyPEM)
}

// roleForToken checks a join token against the cluster; it says precisely
// why a token is refused, and never which secret would have been right.
func roleForToken(c *state.Cluster, token string) (swarm.NodeRole, error) {
	t, err := jointoken.Parse(token)
	if err != nil {
		return "", errdefs.Invalid("invalid join token: %v", err)
	}
	if !t.MatchesCA(caDER(c)) {
		return "", errdefs.Unauthorized("invalid join token: its CA digest does not match this swarm's root CA; the token belongs to another swarm or was mistyped")
	}
	switch {
	case jointoken.SameSecret(token, c.WorkerToken):
		return swarm.NodeRoleWorker, nil
	case jointoken.SameSecret(token, c.ManagerToken):
		return swarm.NodeRoleManager, nil
	}
	return "", errdefs.Unauthorized("invalid join token: it is not a current token of this swarm (it may have been rotated); get a current one with 'flotilla swarm join-token worker|manager' on a manager")
}

// Join admits a node: checks its token, creates its node object and signs
// its certificate. A refused join writes nothing.
func (m *Manager) Join(ctx context.Context, req nodeapi.JoinRequest) (nodeapi.JoinResponse, error) {
	if err := m.requireLeader(); err != nil {
		return nodeapi.JoinResponse{}, err
	}
	c, err := m.Cluster()
	if err != nil {
		return nodeapi.JoinResponse{}, err
	}
	role, err := roleForToken(c, req.Token)
	if err != nil {
		return nodeapi.JoinResponse{}, err
	}
	host, _, err := net.SplitHostPort(req.Addr)
	if err != nil {
		return nodeapi.JoinResponse{}, errdefs.Invalid("invalid advertise address %q: %v", req.Addr, err)
	}
	avail := req.Availability
	if avail == "" {
		avail = swarm.NodeAvailabilityActive
	}
	if err := checkAvailability(avail); err != nil {
		return nodeapi.JoinResponse{}, err
	}
	root, err := rootOf(c)
	if err != nil {
		return nodeapi.JoinResponse{}, err
	}
	nodeID := ids.New()
	certPEM, err := root.IssueNodeCert(req.CSR, nodeID, string(role), c.ID, ipsOf(host), certExpiry(c))
	if err != nil {
		return nodeapi.JoinResponse{}, errdefs.Invalid("cannot sign the node's certificate request: %v", err)
	}
	n := &state.Node{Role: role, Addr: req.Addr}
	n.ID = nodeID
	n.Spec.Role = role
	n.Spec.Availability = avail
	n.Description = req.Description
	n.Description.Hostname = req.Hostname
	n.Status = swarm.NodeStatus{State: swarm.NodeStateReady, Addr: host}
	if role == swarm.NodeRoleManager {
		n.ManagerStatus = &swarm.ManagerStatus{Addr: req.Addr, Reachability: swarm.ReachabilityUnknown}
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.disp.Heartbeat(n.ID, req.Addr, nil) // its description is written with it
	if err := m.propose(ctx, state.NewOp(state.TableNodes, state.ActionCreate, n, 0)); err != nil {
		return nodeapi.JoinResponse{}, err
	}
	m.log.Info("node joined", "target_node", nodeID, "hostname", req.Hostname, "role", role)
	return nodeapi.JoinResponse{
		NodeID: nodeID, ClusterID: c.ID, Role: role, CertPEM: certPEM, CAPEM: c.RootCACertPEM,
		Managers: m.Managers(),
	}, nil
}

func certExpiry(c *state.Cluster) time.Duration {
	if d := c.Spec.CAConfig.NodeCertExpiry; d > 0 {
		return d
	}
	return DefaultCertExpiry
}

func ipsOf(host string) []net.IP {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}
	}
	return nil
}

func checkAvailability(a swarm.NodeAvailability) error {
	switch a {
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
		return nil
	}
	return errdefs.Invalid("invalid availability %q: it must be active, pause or drain", a)
}
