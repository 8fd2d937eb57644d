package daemon

import (
	"os"

	"github.com/flotilla-org/flotilla/agent/discovery"
	"github.com/flotilla-org/flotilla/agent/dns"
	"github.com/flotilla-org/flotilla/agent/netrules"
)

// startDiscovery starts the node's service discovery: DNS for its tasks'
// networks, and capture of the networks' subnets into the mesh. Capture
// needs nat rules, so root (or CAP_NET_ADMIN) and iptables; without them
// names still resolve but the addresses they give do not answer, which
// the log says once.
func (n *clusterNode) startDiscovery() {
	log := n.log.With("component", "discovery")
	var upstream []string
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		upstream = dns.Upstream(b, false)
	}
	var rules *netrules.Rules
	if bin, err := netrules.Detect(); err != nil {
		log.Warn("service discovery: tasks cannot reach services by address on this node", "err", err)
	} else {
		// Nodes sharing one network namespace (the sandbox, tests) keep
		// a chain each.
		rules = &netrules.Rules{Bin: bin, Name: captureChain(n.st.NodeID)}
	}
	n.disc = discovery.New(discovery.Config{Mesh: n.mesh, Rules: rules, Upstream: upstream, Log: log})
	if err := n.disc.Start(); err != nil {
		log.Warn("service discovery: cannot listen for captured connections; tasks cannot reach services by address on this node", "err", err)
	}
}

// captureChain is the node's nat chain: iptables allows 28 characters.
func captureChain(nodeID string) string {
	if len(nodeID) > 12 {
		nodeID = nodeID[:12]
	}
	return "FLOTILLA-" + nodeID
}
