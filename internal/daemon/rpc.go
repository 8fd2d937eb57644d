package daemon

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager"
	"github.com/flotilla-org/flotilla/security/ca"
)

// rpcHandler serves the node-to-node API on the cluster port. Every call
// but the CA download and join needs a certificate of this cluster; Engine
// API forwarding needs a manager's.
func (n *clusterNode) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+nodeapi.PathCA, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(n.tls.certs().ca)
	})
	mux.HandleFunc("POST "+nodeapi.PathJoin, n.leaderRPC(false, func(ctx context.Context, m *manager.Manager, _ string, body []byte) (any, error) {
		var req nodeapi.JoinRequest
		if err := decodeRPC(body, &req); err != nil {
			return nil, err
		}
		return m.Join(ctx, req)
	}))
	mux.HandleFunc("POST "+nodeapi.PathHeartbeat, n.localRPC(func(ctx context.Context, m *manager.Manager, peer string, body []byte) (any, error) {
		var req nodeapi.HeartbeatRequest
		if err := decodeRPC(body, &req); err != nil {
			return nil, err
		}
		if m.IsLeader() {
			return m.Heartbeat(ctx, peer, req)
		}
		resp, err := m.FollowerHeartbeat(peer)
		if err != nil {
			return nil, err
		}
		return resp, n.relay.beat(ctx, peer, req)
	}))
	mux.HandleFunc("POST "+nodeapi.PathRenew, n.leaderRPC(true, func(ctx context.Context, m *manager.Manager, peer string, body []byte) (any, error) {
		var req nodeapi.RenewRequest
		if err := decodeRPC(body, &req); err != nil {
			return nil, err
		}
		return m.Renew(ctx, peer, req)
	}))
	mux.HandleFunc("POST "+nodeapi.PathRaftJoin, n.leaderRPC(true, func(ctx context.Context, m *manager.Manager, peer string, body []byte) (any, error) {
		var req nodeapi.RaftJoinRequest
		if err := decodeRPC(body, &req); err != nil {
			return nil, err
		}
		return struct{}{}, m.RaftJoin(ctx, peer, req)
	}))
	mux.HandleFunc("POST "+nodeapi.PathRaftLeave, n.leaderRPC(true, func(ctx context.Context, m *manager.Manager, peer string, _ []byte) (any, error) {
		return struct{}{}, m.RaftLeave(ctx, peer)
	}))
	mux.HandleFunc("POST "+nodeapi.PathAssignments, n.localRPC(func(ctx context.Context, m *manager.Manager, peer string, body []byte) (any, error) {
		var req nodeapi.AssignmentsRequest
		if err := decodeRPC(body, &req); err != nil {
			return nil, err
		}
		return m.Assignments(ctx, peer, req)
	}))
	mux.HandleFunc("POST "+nodeapi.PathRoutes, n.localRPC(func(ctx context.Context, m *manager.Manager, peer string, body []byte) (any, error) {
		var req nodeapi.RoutesRequest
		if err := decodeRPC(body, &req); err != nil {
			return nil, err
		}
		return m.Routes(ctx, peer, req)
	}))
	mux.HandleFunc("POST "+nodeapi.PathPeers, n.localRPC(func(ctx context.Context, m *manager.Manager, peer string, body []byte) (any, error) {
		var req nodeapi.PeersRequest
		if err := decodeRPC(body, &req); err != nil {
			return nil, err
		}
		return m.Peers(ctx, peer, req)
	}))
	mux.HandleFunc("POST "+nodeapi.PathTaskStatus, n.localRPC(func(ctx context.Context, m *manager.Manager, peer string, body []byte) (any, error) {
		var req nodeapi.TaskStatusRequest
		if err := decodeRPC(body, &req); err != nil {
			return nil, err
		}
		if m.IsLeader() {
			return struct{}{}, m.TaskStatus(ctx, peer, req)
		}
		return struct{}{}, n.relay.statuses(ctx, peer, req)
	}))
	mux.HandleFunc("POST "+nodeapi.PathRelay, n.serveRelay)
	mux.HandleFunc("POST "+nodeapi.PathLogs, n.serveLogs)
	mux.Handle(nodeapi.PathAPI+"/", http.HandlerFunc(n.forwardedAPI))
	return timeRPC(n.d.metrics.rpc, mux)
}

func decodeRPC(body []byte, v any) error {
	if err := nodeapi.Unmarshal(body, v); err != nil {
		return errdefs.Invalid("malformed request body: %v", err)
	}
	return nil
}

// peerOf returns the verified identity of the caller ("" when it sent no
// certificate). A manager forwarding for a node names it in HeaderPeer.
func (n *clusterNode) peerOf(r *http.Request) (ca.Identity, error) {
	conn := clusterport.ConnOf(r.Context())
	if conn == nil || len(conn.State.PeerCertificates) == 0 {
		return ca.Identity{}, nil
	}
	root := n.tls.rootCA()
	v, err := conn.Peer(func(st tls.ConnectionState) (any, error) { return root.VerifyPeer(st.PeerCertificates) })
	if err != nil {
		return ca.Identity{}, errdefs.Unauthorized("certificate refused: %v", err)
	}
	id := v.(ca.Identity)
	// Removal is checked on every request: a removed node's connection
	// must stop working at once, not at its next handshake.
	if m := n.manager(); m != nil && m.IsRemoved(id.NodeID) {
		return ca.Identity{}, nodeapi.ErrNodeRemoved
	}
	if fwd := r.Header.Get(nodeapi.HeaderPeer); fwd != "" && id.Role == ca.RoleManager {
		return ca.Identity{NodeID: fwd, Role: "forwarded", ClusterID: id.ClusterID}, nil
	}
	return id, nil
}

type rpcFunc func(ctx context.Context, m *manager.Manager, peerID string, body []byte) (any, error)

// leaderRPC runs f on the leader: a follower forwards the call, naming the
// caller, and a worker refuses it.
func (n *clusterNode) leaderRPC(needCert bool, f rpcFunc) http.HandlerFunc {
	return n.managerRPC(needCert, true, f)
}

// localRPC runs f on whichever manager the node called (a node's session:
// a follower answers from its replica and relays what the leader must
// take); it needs a node certificate, and a worker refuses it.
func (n *clusterNode) localRPC(f rpcFunc) http.HandlerFunc {
	return n.managerRPC(true, false, f)
}

func (n *clusterNode) managerRPC(needCert, onLeader bool, f rpcFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := n.peerOf(r)
		if err != nil {
			nodeapi.WriteError(w, err)
			return
		}
		if needCert && id.NodeID == "" {
			nodeapi.WriteError(w, errdefs.Unauthorized("this call needs a node certificate of this swarm"))
			return
		}
		m := n.manager()
		if m == nil {
			nodeapi.WriteError(w, errdefs.ErrNotManager)
			return
		}
		if onLeader && !m.IsLeader() {
			n.proxyToLeader(w, r, m, id.NodeID, "", rpcBodyLimit)
			return
		}
		body, err := nodeapi.ReadBody(r.Body, r.ContentLength, rpcBodyLimit)
		if err != nil {
			nodeapi.WriteError(w, errdefs.Invalid("read request: %v", err))
			return
		}
		out, err := f(r.Context(), m, id.NodeID, body)
		if err != nil {
			nodeapi.WriteError(w, err)
			return
		}
		nodeapi.WriteJSON(w, out)
	}
}

// serveRelay takes heartbeats and status reports a follower relays for
// its nodes (leader only).
func (n *clusterNode) serveRelay(w http.ResponseWriter, r *http.Request) {
	id, err := n.peerOf(r)
	m := n.manager() // once: a demotion may clear it meanwhile
	switch {
	case err != nil:
	case id.Role != ca.RoleManager:
		err = errdefs.Forbidden("only managers may relay heartbeats and status reports")
	case m == nil:
		err = errdefs.ErrNotManager
	}
	if err != nil {
		nodeapi.WriteError(w, err)
		return
	}
	var req nodeapi.RelayRequest
	body, err := nodeapi.ReadBody(r.Body, r.ContentLength, relayBodyLimit)
	if err == nil {
		err = decodeRPC(body, &req)
	}
	if err != nil {
		nodeapi.WriteError(w, errdefs.Invalid("read relay request: %v", err))
		return
	}
	resp, err := m.Relayed(r.Context(), req)
	if err != nil {
		nodeapi.WriteError(w, err)
		return
	}
	nodeapi.WriteJSON(w, resp)
}

// forwardedAPI serves Engine API requests another manager forwarded.
func (n *clusterNode) forwardedAPI(w http.ResponseWriter, r *http.Request) {
	id, err := n.peerOf(r)
	if err != nil {
		nodeapi.WriteError(w, err)
		return
	}
	if id.Role != ca.RoleManager {
		nodeapi.WriteError(w, errdefs.Forbidden("only managers may forward API requests"))
		return
	}
	if n.d.current() != n {
		// The cluster port opens before the daemon has finished starting
		// (or rejoining): the API would answer "not part of a swarm".
		nodeapi.WriteError(w, errdefs.Unavailable("this manager is still starting and cannot serve forwarded requests yet; the request was not applied: retry"))
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, nodeapi.PathAPI)
	r2.URL.RawPath = ""
	n.d.apiHandler.ServeHTTP(w, r2)
}

// rpcBodyLimit is the largest node-to-node request body, on the leader and
// on a follower that forwards it.
const rpcBodyLimit = 4 << 20

// relayBodyLimit bounds a relay: at most relayBatchMax nodes' requests,
// each within rpcBodyLimit in principle but a few KiB in practice.
const relayBodyLimit = 64 << 20
