package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver/docker"

	"github.com/flotilla-org/flotilla/agent/discovery"
	"github.com/flotilla-org/flotilla/agent/dns"
)

// startDiscovery starts the node's service discovery: DNS for its tasks'
// networks, and capture of the networks' subnets into the mesh. Capture
// needs nat rules, so root (or CAP_NET_ADMIN) and iptables; without them
// names still resolve but the addresses they give do not answer, which
// the log says once.
func (n *clusterNode) startDiscovery(ctx context.Context) {
	log := withComponent(n.root, "discovery")
	var upstream []string
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		upstream = dns.Upstream(b, false)
	}
	n.disc = discovery.New(discovery.Config{Mesh: n.mesh, Rules: n.rules, Upstream: upstream, Log: log})
	n.d.disc.Store(n.disc)
	n.serveBridges(ctx, log)
}

// serveBridges serves the docker bridges this node made before a restart
// (their containers may still run), after removing those none uses.
func (n *clusterNode) serveBridges(ctx context.Context, log *slog.Logger) {
	dk, ok := n.d.drivers["docker"].(*docker.Driver)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := dk.RemoveBridges(ctx, n.st.NodeID); err != nil {
		log.Warn("service discovery: cannot remove unused docker bridges", "err", err)
	}
	bridges, err := dk.Bridges(ctx, n.st.NodeID)
	if err != nil {
		log.Warn("service discovery: cannot list this node's docker bridges; their containers resolve no names until restarted", "err", err)
	}
	for _, b := range bridges {
		if err := n.disc.AddBridge(bridgeOf(b)); err != nil {
			log.Warn("service discovery: cannot serve a docker bridge", "network", b.NetworkName, "err", err)
		}
	}
}

func bridgeOf(b docker.Bridge) discovery.Bridge {
	return discovery.Bridge{NetworkID: b.NetworkID, Iface: b.Iface, Gateway: b.Gateway, Subnet: b.Subnet}
}

// prepareBridge is the docker driver's PrepareNetwork: the node's DNS
// server and capture rules for a bridge, before a container runs on it.
func (d *Daemon) prepareBridge(_ context.Context, b docker.Bridge) error {
	disc := d.disc.Load()
	if disc == nil {
		return errors.New("service discovery is not running on this node (it is in no swarm)")
	}
	return disc.AddBridge(bridgeOf(b))
}

// bridgeGone is the docker driver's NetworkGone.
func (d *Daemon) bridgeGone(b docker.Bridge) {
	if disc := d.disc.Load(); disc != nil {
		disc.RemoveBridge(b.NetworkID)
	}
}
