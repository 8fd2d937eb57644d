package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/ids"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager"
	"github.com/flotilla-org/flotilla/manager/dispatcher"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/ca"
	"github.com/flotilla-org/flotilla/security/jointoken"
)

// SwarmInit makes this node the first manager of a new swarm: root CA,
// join tokens, its own certificate, and a one-member Raft cluster.
func (b *backend) SwarmInit(ctx context.Context, req swarm.InitRequest) (string, error) {
	return b.d.swarmInit(ctx, req, nil)
}

// swarmInit creates the swarm. With a bootstrap secret, its join tokens
// are derived from it (jointoken.Derive) instead of random, so the other
// nodes started with the same secret can compute them.
func (d *Daemon) swarmInit(ctx context.Context, req swarm.InitRequest, bootstrapSecret []byte) (string, error) {
	b := &backend{d: d}
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if locked, err := d.lockedOp("init", req.ForceNewCluster); locked {
		return "", err
	}
	if req.ForceNewCluster {
		return b.forceNewCluster(ctx, req)
	}
	if d.current() != nil {
		return "", errdefs.ErrAlreadyInSwarm
	}
	avail := req.Availability
	if avail == "" {
		avail = swarm.NodeAvailabilityActive
	}
	if err := checkAvail(avail); err != nil {
		return "", err
	}
	if v, ok := req.Spec.Labels[manager.NodeDownRemovalLabel]; ok {
		if _, err := manager.ParseNodeDownRemoval(v); err != nil {
			return "", err
		}
	}
	listen, advertise, err := resolveAddrs(req.ListenAddr, req.AdvertiseAddr)
	if err != nil {
		return "", err
	}
	if err := checkListen(listen); err != nil {
		return "", err
	}
	nodeID, clusterID := ids.New(), ids.New()
	root, err := ca.NewRootCA(clusterID)
	if err != nil {
		return "", err
	}
	workerTok, err := newJoinToken(root.Cert.Raw, bootstrapSecret, "worker")
	if err != nil {
		return "", err
	}
	managerTok, err := newJoinToken(root.Cert.Raw, bootstrapSecret, "manager")
	if err != nil {
		return "", err
	}
	keyPEM, csrPEM, err := ca.NewKeyAndCSR(nodeID)
	if err != nil {
		return "", err
	}
	host, _, _ := net.SplitHostPort(advertise)
	certPEM, err := root.IssueNodeCert(csrPEM, nodeID, ca.RoleManager, clusterID, ipList(host), manager.DefaultCertExpiry)
	if err != nil {
		return "", err
	}
	st := &localState{NodeID: nodeID, ClusterID: clusterID, Role: swarm.NodeRoleManager, ListenAddr: listen, AdvertiseAddr: advertise,
		AdvertiseGuessed: advertiseGuessed(req.AdvertiseAddr, listen), Managers: []swarm.Peer{{NodeID: nodeID, Addr: advertise}}}
	certs := certFiles{cert: certPEM, key: keyPEM, ca: root.CertPEM}
	_ = os.RemoveAll(d.paths.swarmDir()) // leftovers of an init that never finished
	if err := d.paths.saveCerts(certs); err != nil {
		return "", err
	}
	n, err := startClusterNode(d, st, certs, true, nil, nil)
	if err != nil {
		_ = os.RemoveAll(d.paths.swarmDir())
		return "", err
	}
	spec := withSpecDefaults(req.Spec)
	c := &state.Cluster{RootCACertPEM: root.CertPEM, RootCAKeyPEM: root.KeyPEM, WorkerToken: workerTok, ManagerToken: managerTok}
	if err := initAutolock(c, &spec, req.AutoLockManagers); err != nil {
		n.stop()
		_ = os.RemoveAll(d.paths.swarmDir())
		return "", err
	}
	c.ID = clusterID
	if err := manager.TakeNodeDownRemoval(c, &spec); err != nil {
		n.stop()
		_ = os.RemoveAll(d.paths.swarmDir())
		return "", err
	}
	c.Spec = spec
	c.TLSInfo = swarm.TLSInfo{TrustRoot: string(root.CertPEM)}
	node := &state.Node{Role: swarm.NodeRoleManager, Addr: advertise}
	node.ID = nodeID
	node.Spec = swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: avail}
	node.Description = d.describe()
	node.Status = swarm.NodeStatus{State: swarm.NodeStateReady, Addr: host}
	node.ManagerStatus = &swarm.ManagerStatus{Addr: advertise, Reachability: swarm.ReachabilityReachable}
	bctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := n.manager().Bootstrap(bctx, c, node); err != nil {
		n.stop()
		_ = os.RemoveAll(d.paths.swarmDir())
		return "", fmt.Errorf("initialize the swarm's state: %w", err)
	}
	// Seal node.key before init returns, so a restart right after an
	// init --autolock comes up locked.
	if err := n.syncKeys(n.manager()); err != nil {
		n.stop()
		_ = os.RemoveAll(d.paths.swarmDir())
		return "", err
	}
	if err := d.paths.saveState(st); err != nil {
		n.stop()
		_ = os.RemoveAll(d.paths.swarmDir())
		return "", err
	}
	d.setNode(n, "")
	d.log.Info("swarm initialized", "node", nodeID, "cluster", clusterID, "addr", advertise)
	return nodeID, nil
}

func checkAvail(a swarm.NodeAvailability) error {
	switch a {
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
		return nil
	}
	return errdefs.Invalid("invalid availability %q: it must be active, pause or drain", a)
}

func ipList(host string) []net.IP {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}
	}
	return nil
}

// SwarmJoin joins through the first of the given managers that admits the
// node, so one manager being down does not stop a join.
func (b *backend) SwarmJoin(ctx context.Context, req swarm.JoinRequest) error {
	return b.d.swarmJoin(ctx, req, "")
}

// swarmJoin joins; spec is the discovery spec the addresses came from,
// remembered so a restart that reaches no known manager can ask it again.
func (d *Daemon) swarmJoin(ctx context.Context, req swarm.JoinRequest, spec string) error {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if locked, err := d.lockedOp("join", false); locked {
		return err
	}
	if d.current() != nil {
		return errdefs.ErrAlreadyInSwarm
	}
	remotes := splitRemotes(req.RemoteAddrs)
	if len(remotes) == 0 {
		return errdefs.Invalid("at least 1 RemoteAddr is required to join")
	}
	tok, err := jointoken.Parse(req.JoinToken)
	if err != nil {
		return errdefs.Invalid("invalid join token: %v", err)
	}
	avail := req.Availability
	if avail == "" {
		avail = swarm.NodeAvailabilityActive
	}
	if err := checkAvail(avail); err != nil {
		return err
	}
	listen, advertise, err := resolveAddrs(req.ListenAddr, req.AdvertiseAddr)
	if err != nil {
		return err
	}
	if err := checkListen(listen); err != nil {
		return err
	}
	keyPEM, csrPEM, err := ca.NewKeyAndCSR("joining")
	if err != nil {
		return err
	}
	var resp nodeapi.JoinResponse
	var errs []error
	joined := false
	for _, addr := range remotes {
		resp, err = joinVia(ctx, addr, tok, nodeapi.JoinRequest{
			Token: req.JoinToken, CSR: csrPEM, Hostname: d.cfg.Hostname, Addr: advertise,
			Availability: avail, Description: d.describe(),
		})
		if err == nil {
			joined = true
			break
		}
		d.log.Warn("join attempt failed", "manager", addr, "err", err)
		// A refused token is refused by every manager: stop here.
		if k := errdefs.KindOf(err); k == errdefs.KindUnauthorized || k == errdefs.KindInvalid || k == errdefs.KindForbidden {
			return err
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	if !joined {
		return errdefs.Unavailable("could not join through any of the managers given (%s); check that at least one is running and reachable", errors.Join(errs...))
	}
	st := &localState{NodeID: resp.NodeID, ClusterID: resp.ClusterID, Role: resp.Role, ListenAddr: listen, AdvertiseAddr: advertise,
		AdvertiseGuessed: advertiseGuessed(req.AdvertiseAddr, listen), Managers: resp.Managers, Discovery: spec}
	certs := certFiles{cert: resp.CertPEM, key: keyPEM, ca: resp.CAPEM}
	_ = os.RemoveAll(d.paths.swarmDir())
	if err := d.paths.saveCerts(certs); err != nil {
		return err
	}
	n, err := startClusterNode(d, st, certs, false, nil, nil)
	if err != nil {
		_ = os.RemoveAll(d.paths.swarmDir())
		return err
	}
	if st.Role == swarm.NodeRoleManager {
		jctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := n.joinRaft(jctx); err != nil {
			// Do not leave a voter behind that will never answer: it would
			// count against the quorum of the managers that are left.
			lctx, lcancel := context.WithTimeout(context.Background(), 5*time.Second)
			if lerr := n.callManagers(lctx, nodeapi.PathRaftLeave, struct{}{}, nil); lerr != nil {
				d.log.Warn("could not undo this manager's raft membership after a failed join; demote and remove it on another manager", "err", lerr)
			}
			lcancel()
			n.stop()
			_ = os.RemoveAll(d.paths.swarmDir())
			return fmt.Errorf("join the managers' raft group: %w", err)
		}
	}
	if err := d.paths.saveState(st); err != nil {
		n.stop()
		_ = os.RemoveAll(d.paths.swarmDir())
		return err
	}
	d.setNode(n, "")
	d.log.Info("joined swarm", "node", st.NodeID, "role", st.Role)
	return nil
}

// joinVia fetches addr's CA, checks it against the token's digest before
// trusting anything from addr, then asks to join.
func joinVia(ctx context.Context, addr string, tok jointoken.Token, req nodeapi.JoinRequest) (nodeapi.JoinResponse, error) {
	caPEM, err := nodeapi.FetchCA(ctx, addr, ca.FetchInsecureConfig(clusterport.ProtoRPC))
	if err != nil {
		return nodeapi.JoinResponse{}, errdefs.Unavailable("fetch the root CA: %v", err)
	}
	root, err := ca.ParseRootCA(caPEM, nil)
	if err != nil {
		return nodeapi.JoinResponse{}, errdefs.Unavailable("the manager at %s sent an unusable root CA: %v", addr, err)
	}
	if !tok.MatchesCA(root.Cert.Raw) {
		return nodeapi.JoinResponse{}, errdefs.Unauthorized("the root CA of the swarm at %s does not match the join token's CA digest: the token belongs to another swarm, or %s is not the manager you meant; nothing was changed", addr, addr)
	}
	cfg, err := ca.ClientTLSConfig(nil, nil, root, clusterport.ProtoRPC)
	if err != nil {
		return nodeapi.JoinResponse{}, err
	}
	cli := nodeapi.NewClient(func() *tls.Config { return cfg }, func() uint64 { return 0 })
	defer cli.Close()
	var resp nodeapi.JoinResponse
	if err := cli.Call(ctx, addr, nodeapi.PathJoin, req, &resp); err != nil {
		return resp, err
	}
	if resp.NodeID == "" || len(resp.CertPEM) == 0 {
		return resp, errdefs.Unavailable("the manager at %s sent an incomplete join answer", addr)
	}
	return resp, nil
}

// joinRaft asks the leader to add this new manager to Raft and waits
// until the cluster state has reached it.
func (n *clusterNode) joinRaft(ctx context.Context) error {
	for {
		err := n.callManagers(ctx, nodeapi.PathRaftJoin, nodeapi.RaftJoinRequest{Addr: n.state().AdvertiseAddr}, nil)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
	m := n.manager()
	for m.Store().Cluster() == nil || m.Store().Node(n.state().NodeID) == nil {
		select {
		case <-ctx.Done():
			return errdefs.Unavailable("the swarm's state did not reach this manager in time")
		case <-m.Store().Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// SwarmLeave takes the node out of its swarm and forgets it. A manager
// needs force, and then leaves Raft first so the others keep a quorum.
func (b *backend) SwarmLeave(ctx context.Context, force bool) error {
	d := b.d
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if locked, err := d.lockedOp("leave", force); locked {
		return err
	}
	n := d.current()
	if n == nil {
		return errdefs.ErrNotInSwarm
	}
	st := n.state()
	if m := n.manager(); m != nil {
		if !force {
			return m.LeaveCheck(st.NodeID)
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var err error
		if m.IsLeader() {
			err = m.RaftLeave(lctx, st.NodeID)
		} else {
			err = n.callManagers(lctx, nodeapi.PathRaftLeave, struct{}{}, nil)
		}
		cancel()
		if err != nil {
			d.log.Warn("could not take this manager out of raft before leaving; remove it with 'node demote' and 'node rm' on another manager", "err", err)
		}
	}
	d.setNode(nil, "")
	n.stop()
	// The node's tasks belong to the swarm it left: stop them (they are
	// built to outlive a daemon, so nothing else would).
	if n.exec != nil {
		n.exec.RemoveAll(context.WithoutCancel(ctx))
	}
	if err := os.RemoveAll(d.paths.swarmDir()); err != nil {
		return err
	}
	d.log.Info("left the swarm", "node", st.NodeID)
	return nil
}

// withSpecDefaults fills what the user left zero with the values this
// swarm really uses, so 'info' and 'swarm inspect' show them.
func withSpecDefaults(spec swarm.Spec) swarm.Spec {
	if spec.Name == "" {
		spec.Name = "default"
	}
	if spec.Orchestration.TaskHistoryRetentionLimit == nil {
		limit := int64(5)
		spec.Orchestration.TaskHistoryRetentionLimit = &limit
	}
	if spec.Raft.SnapshotInterval == 0 {
		spec.Raft.SnapshotInterval = 4096
	}
	if spec.Raft.LogEntriesForSlowFollowers == 0 {
		spec.Raft.LogEntriesForSlowFollowers = 4096
	}
	if spec.Raft.HeartbeatTick == 0 {
		spec.Raft.HeartbeatTick = 1
	}
	if spec.Raft.ElectionTick == 0 {
		spec.Raft.ElectionTick = 2
	}
	if spec.Dispatcher.HeartbeatPeriod == 0 {
		spec.Dispatcher.HeartbeatPeriod = dispatcher.DefaultPeriod
	}
	if spec.CAConfig.NodeCertExpiry == 0 {
		spec.CAConfig.NodeCertExpiry = manager.DefaultCertExpiry
	}
	return spec
}
