package daemon

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"

	"github.com/flotilla-org/flotilla/agent/mesh"
	"github.com/flotilla-org/flotilla/agent/netrules"
	"github.com/flotilla-org/flotilla/internal/clusterport"
)

// startMesh starts the node's routing mesh: it listens on the published
// ports the managers' table names, and takes connections other nodes
// relay to its tasks on the cluster port.
func (n *clusterNode) startMesh() {
	log := withComponent(n.root, "mesh")
	if bin, err := netrules.Detect(); err != nil {
		log.Warn("this node cannot make nat rules: its tasks cannot reach services by address, and published ports go through the mesh in user space", "err", err)
	} else {
		// Nodes sharing one network namespace (the sandbox, tests) keep
		// chains each.
		n.rules = &netrules.Rules{Bin: bin, Name: netrules.NodeChain(n.st.NodeID), Forgot: func(count int, err error) {
			if err != nil {
				log.Warn("routing mesh: cannot reset the connections of tasks that left rotation; they end when TCP gives up", "reset", count, "err", err)
				return
			}
			log.Debug("routing mesh: reset the connections of tasks that left rotation", "count", count)
		}}
	}
	cfg := mesh.Config{
		NodeID:   n.st.NodeID,
		BindHost: n.d.cfg.PublishAddr,
		Local:    n.exec.Endpoint,
		DialPeer: n.dialMesh,
		Log:      log,
	}
	if n.rules != nil && !n.d.cfg.NoMeshKernel {
		cfg.Kernel = n.rules
		if n.d.cfg.MeshBetweenNodes {
			cfg.Between, cfg.Self = true, advertisedHost(n.st.AdvertiseAddr)
		}
	}
	n.mesh = mesh.New(cfg)
	ln := n.mux.Sub(clusterport.ProtoMesh)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !n.acceptMeshPeer(c) {
				c.Close()
				continue
			}
			go n.mesh.ServeRelay(c)
		}
	}()
}

// advertisedHost is the host of the node's cluster address, or the zero
// Addr when it is not an IP address.
func advertisedHost(addr string) netip.Addr {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// acceptMeshPeer lets only nodes of this cluster that were not removed
// reach this node's tasks.
func (n *clusterNode) acceptMeshPeer(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return false
	}
	id, err := n.tls.rootCA().VerifyPeer(tc.ConnectionState().PeerCertificates)
	if err != nil {
		n.log.Warn("refused routing mesh connection", "remote", c.RemoteAddr(), "err", err)
		return false
	}
	if m := n.manager(); m != nil && m.IsRemoved(id.NodeID) {
		return false
	}
	return true
}

func (n *clusterNode) dialMesh(ctx context.Context, addr string) (net.Conn, error) {
	d := &tls.Dialer{Config: n.tls.clientConfig(clusterport.ProtoMesh)}
	return d.DialContext(ctx, "tcp", addr)
}
