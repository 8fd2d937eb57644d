package daemon

import (
	"context"
	"crypto/tls"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent"
	"github.com/flotilla-org/flotilla/agent/discovery"
	"github.com/flotilla-org/flotilla/agent/mesh"
	"github.com/flotilla-org/flotilla/agent/netrules"
	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager"
	"github.com/flotilla-org/flotilla/security/ca"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// clusterNode is a node in a swarm: its cluster port, its certificate,
// its agent session and, on managers, the manager.
type clusterNode struct {
	d    *Daemon
	root *slog.Logger // the daemon's root with node=this node's ID
	log  *slog.Logger // component=daemon
	tls  *tlsState
	mux  *clusterport.Mux
	rpc  *http.Server
	cli  *nodeapi.Client
	// relay carries on to the leader what this node's session clients
	// send it while it is a follower.
	relay *relayer

	mu      sync.Mutex
	st      localState
	mgr     *manager.Manager
	err     string // shown in info, e.g. "removed from the swarm"
	session *agent.Session
	exec    *agent.Executor
	mesh    *mesh.Mesh
	disc    *discovery.Discovery
	rules   *netrules.Rules // nil: this node cannot make nat rules
	keys    nodeKeys        // on managers: the Raft DEK and the autolock KEK

	rpcCancel context.CancelFunc
	roleMu    sync.Mutex // one role change at a time
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	stopped   chan struct{}
	stopOnce  sync.Once
}

// startClusterNode opens the cluster port and starts the roles. With
// bootstrap, the manager forms a new one-member Raft cluster. dek and kek
// are the keys read from node.key (nil when there are none).
func startClusterNode(d *Daemon, st *localState, certs certFiles, bootstrap bool, dek, kek *encryption.Key) (*clusterNode, error) {
	ts, err := newTLSState(certs)
	if err != nil {
		return nil, err
	}
	root := d.root.With("node", st.NodeID)
	mux, err := clusterport.Listen(st.ListenAddr, ts.serverConfig(), withComponent(root, "clusterport"))
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s for the cluster port: %w; if this machine's address changed, start the daemon with --listen-addr (and --advertise-addr) set to its new address", st.ListenAddr, err)
	}
	n := &clusterNode{d: d, root: root, log: withComponent(root, "daemon"), tls: ts, mux: mux, st: *st, stopped: make(chan struct{})}
	n.keys.dek, n.keys.kek = dek, kek
	n.cli = nodeapi.NewClient(func() *tls.Config { return ts.clientConfig(clusterport.ProtoRPC) }, ts.generation)
	rpcCtx, rpcCancel := context.WithCancel(context.Background())
	n.rpcCancel = rpcCancel
	n.relay = &relayer{base: rpcCtx, manager: managerHost(n), call: n.cli.Call}
	n.rpc = clusterport.RPCServer(&http.Server{Handler: n.rpcHandler(), ReadHeaderTimeout: 10 * time.Second, ConnContext: clusterport.ConnContext,
		// Long-polls end at once when the node stops.
		BaseContext: func(net.Listener) context.Context { return rpcCtx }})
	go func() { _ = n.rpc.Serve(mux.Sub(clusterport.ProtoRPC)) }()

	if st.Role == swarm.NodeRoleManager {
		if err := n.startManager(bootstrap); err != nil {
			n.stop()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.startSession(ctx)
	return n, nil
}

func (n *clusterNode) startManager(bootstrap bool) error {
	dek, err := n.ensureDEK()
	if err != nil {
		return err
	}
	m, err := manager.Start(manager.Config{
		NodeID:      n.st.NodeID,
		Advertise:   n.st.AdvertiseAddr,
		Dir:         n.d.paths.raftDir(),
		Listener:    n.mux.Sub(clusterport.ProtoRaft),
		DialTLS:     func() *tls.Config { return n.tls.clientConfig(clusterport.ProtoRaft) },
		AcceptPeer:  n.acceptRaftPeer,
		Bootstrap:   bootstrap,
		DEK:         dek,
		Timing:      n.d.cfg.Timing,
		Log:         n.root, // the manager names its parts' components
		LeaderLoops: n.d.leaderLoops,
		Metrics:     n.d.metrics.manager,
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.mgr = m
	n.mu.Unlock()
	go n.watchUnlockKey(m)
	return nil
}

// acceptRaftPeer lets only managers of this cluster that were not removed
// speak Raft to us.
func (n *clusterNode) acceptRaftPeer(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return false
	}
	certs := tc.ConnectionState().PeerCertificates
	id, err := n.tls.rootCA().VerifyPeer(certs)
	if err != nil || id.Role != ca.RoleManager {
		n.log.Warn("refused raft connection", "remote", c.RemoteAddr(), "err", err, "role", id.Role)
		return false
	}
	if m := n.manager(); m != nil && m.IsRemoved(id.NodeID) {
		return false
	}
	return true
}

func (n *clusterNode) manager() *manager.Manager {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mgr
}

func (n *clusterNode) state() localState {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := n.st
	st.Managers = slices.Clone(n.st.Managers)
	return st
}

func (n *clusterNode) startSession(ctx context.Context) {
	s := &agent.Session{
		NodeID:   n.st.NodeID,
		Addr:     n.st.AdvertiseAddr,
		Describe: func() swarm.NodeDescription { return n.d.describe() },
		Client:   n.cli,
		Log:      withComponent(n.root, "agent"),
		Hooks: agent.Hooks{
			Managers: n.setManagers,
			Role:     func(r swarm.NodeRole) { n.wantRole(ctx, r) },
			Removed:  n.removed,
			Refresh:  n.refreshManagers,
		},
	}
	former, err := n.d.paths.noteNodeID(n.st.NodeID)
	if err != nil {
		n.log.Warn("record this node's identity in its data dir", "err", err)
	}
	n.exec = &agent.Executor{
		FormerNodeIDs: former,
		NodeID:        n.st.NodeID,
		Hostname:      n.d.cfg.Hostname,
		Drivers:       n.d.drivers,
		Default:       n.d.defaultDriver,
		DBPath:        filepath.Join(n.d.paths.swarmDir(), "tasks.json"),
		PublishHost:   n.d.cfg.PublishAddr,
		Log:           withComponent(n.root, "executor"),
		Metrics:       n.d.metrics.agent,
	}
	n.startMesh()
	n.startDiscovery(ctx)
	n.exec.Networks = n.disc
	n.exec.Leaving = n.mesh.TaskLeaving
	s.Hooks.Routes = n.disc.Update
	if err := n.exec.Start(ctx); err != nil {
		n.log.Error("task executor could not start; tasks will not run on this node", "err", err)
	} else {
		s.Executor = n.exec
	}
	s.Mesh = n.mesh
	s.SetManagers(n.managerAddrs())
	n.session = s
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		s.Run(ctx)
	}()
}

// managerAddrs lists where to send heartbeats: this node first if it is a
// manager, then the others. A worker starts its list at a place of its
// own (from its node ID): workers spread over the managers, as every
// manager serves their sessions.
func (n *clusterNode) managerAddrs() []string {
	st := n.state()
	var out []string
	if st.Role == swarm.NodeRoleManager {
		out = append(out, st.AdvertiseAddr)
	}
	peers := st.Managers
	if m := n.manager(); m != nil {
		// A manager also knows the Raft members itself; after a quick
		// demotion its heartbeat-learned list may still be just itself.
		peers = append(slices.Clone(peers), m.Managers()...)
	}
	var others []string
	for _, p := range peers {
		if !slices.Contains(out, p.Addr) && !slices.Contains(others, p.Addr) {
			others = append(others, p.Addr)
		}
	}
	if len(out) == 0 && len(others) > 1 {
		slices.Sort(others)
		h := fnv.New32a()
		_, _ = h.Write([]byte(st.NodeID))
		k := int(h.Sum32() % uint32(len(others)))
		others = slices.Concat(others[k:], others[:k])
	}
	return append(out, others...)
}

// setManagers records the manager list the managers sent, so a restart
// can reach any of them.
func (n *clusterNode) setManagers(peers []swarm.Peer) {
	n.mu.Lock()
	changed := !slices.Equal(peers, n.st.Managers)
	if changed {
		n.st.Managers = slices.Clone(peers)
	}
	st := n.st
	n.mu.Unlock()
	if changed {
		if err := n.d.paths.saveState(&st); err != nil {
			n.log.Warn("save manager list", "err", err)
		}
		n.session.SetManagers(n.managerAddrs())
	}
}

// removed runs once the managers say this node was removed. Its tasks are
// no longer the swarm's and nothing else would stop them; a manager also
// stops its Raft, which would otherwise campaign forever against managers
// that refuse it (and must not be recovered with --force-new-cluster: that
// would split off a second swarm with the same CA).
func (n *clusterNode) removed(err error) {
	msg := "this node was removed from the swarm: run 'flotilla swarm leave --force' on it, then 'flotilla swarm join' with a current token (not 'swarm init --force-new-cluster', which would start a second swarm)"
	n.mu.Lock()
	n.err = msg
	m := n.mgr
	n.mgr = nil
	n.mu.Unlock()
	n.log.Error(msg, "managers said", err)
	if m != nil {
		if err := m.Stop(); err != nil {
			n.log.Warn("stop the removed manager's raft", "err", err)
		}
	}
	if n.exec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n.exec.RemoveAll(ctx)
	}
}

// wantRole moves the node to the role the managers ask for: new
// certificate first, then start or stop the manager.
func (n *clusterNode) wantRole(ctx context.Context, role swarm.NodeRole) {
	cur := n.state().Role
	if role == cur && (role == swarm.NodeRoleManager) == (n.manager() != nil) {
		return
	}
	if !n.roleMu.TryLock() {
		return // a change is under way; the next heartbeat re-checks
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.roleMu.Unlock()
		if err := n.changeRole(ctx, role); err != nil && ctx.Err() == nil {
			n.log.Warn("role change failed; will retry", "to", role, "err", err)
		}
	}()
}

func (n *clusterNode) changeRole(ctx context.Context, role swarm.NodeRole) error {
	st := n.state()
	if st.Role != role {
		keyPEM, csrPEM, err := ca.NewKeyAndCSR(st.NodeID)
		if err != nil {
			return err
		}
		var resp nodeapi.RenewResponse
		if err := n.callManagers(ctx, nodeapi.PathRenew, nodeapi.RenewRequest{CSR: csrPEM}, &resp); err != nil {
			return err
		}
		if resp.Role != role {
			return fmt.Errorf("managers issued a %s certificate, not %s", resp.Role, role)
		}
		certs := certFiles{cert: resp.CertPEM, key: keyPEM, ca: n.tls.certs().ca}
		if err := n.d.paths.saveCerts(certs); err != nil {
			return err
		}
		if err := n.tls.set(certs); err != nil {
			return err
		}
		n.mu.Lock()
		n.st.Role = role
		st = n.st
		n.mu.Unlock()
		if err := n.d.paths.saveState(&st); err != nil {
			return err
		}
		n.log.Info("node role changed", "role", role)
	}
	switch {
	case role == swarm.NodeRoleManager && n.manager() == nil:
		_ = os.RemoveAll(n.d.paths.raftDir()) // a stale log from an old term as manager must not come back
		if err := n.startManager(false); err != nil {
			return err
		}
		if err := n.callManagers(ctx, nodeapi.PathRaftJoin, nodeapi.RaftJoinRequest{Addr: st.AdvertiseAddr}, nil); err != nil {
			return err
		}
	case role == swarm.NodeRoleWorker && n.manager() != nil:
		n.mu.Lock()
		m := n.mgr
		n.mgr = nil
		n.mu.Unlock()
		if err := m.Stop(); err != nil {
			n.log.Warn("stop manager", "err", err)
		}
		_ = os.RemoveAll(n.d.paths.raftDir())
	}
	n.session.SetManagers(n.managerAddrs())
	return nil
}

// callManagers sends one RPC to the first manager that answers, skipping
// this node (which may be the one changing role).
func (n *clusterNode) callManagers(ctx context.Context, path string, in, out any) error {
	self := n.state().AdvertiseAddr
	var lastErr error
	for _, addr := range n.managerAddrs() {
		if addr == self && path != nodeapi.PathRaftLeave {
			if m := n.manager(); m == nil || !m.IsLeader() {
				continue
			}
		}
		err := n.cli.Call(ctx, addr, path, in, out)
		if err == nil {
			return nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no manager is known to this node")
	}
	return lastErr
}

// stop ends the session and the manager and closes the cluster port; the
// state on disk stays, so a restart rejoins.
func (n *clusterNode) stop() {
	n.stopOnce.Do(func() {
		n.closeKeys()
		if n.cancel != nil {
			n.cancel()
		}
		n.rpcCancel()
		n.wg.Wait()
		if n.mesh != nil {
			n.mesh.Close()
		}
		if n.disc != nil {
			n.d.disc.CompareAndSwap(n.disc, nil)
			n.disc.Close()
		}
		if n.exec != nil {
			n.exec.Wait()
		}
		if m := n.manager(); m != nil {
			if err := m.Stop(); err != nil {
				n.log.Warn("stop manager", "err", err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if n.rpc.Shutdown(ctx) != nil {
			_ = n.rpc.Close()
		}
		n.mux.Close()
		n.cli.Close()
		close(n.stopped)
	})
}
