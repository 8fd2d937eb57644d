package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Labels set on the engine networks that carry swarm networks.
const (
	LabelNetworkID   = "com.flotilla.network.id"
	LabelNetworkName = "com.flotilla.network.name"
)

// Options of engine bridge networks: the Linux bridge's name, and the MTU.
const (
	bridgeNameOption = "com.docker.network.bridge.name"
	mtuOption        = "com.docker.network.driver.mtu"
)

// Bridge is the engine bridge network that carries one node's tasks of one
// swarm network. Its subnet is the engine's choice: the tasks' swarm
// addresses are virtual, the node's mesh captures connections to the swarm
// subnet arriving on Iface.
type Bridge struct {
	// NetworkID and NetworkName are the swarm network's.
	NetworkID, NetworkName string
	// EngineNetwork is the engine network's name,
	// flotilla_<swarm network name>_<8 hex digits> (see engineNetworkName).
	EngineNetwork string
	// Iface is the Linux bridge: "fl" and 12 hex digits (see ifaceName).
	Iface string
	// Gateway is the node's address on the bridge (where the node's DNS
	// server listens for the bridge's containers); Subnet is the bridge's.
	Gateway netip.Addr
	Subnet  netip.Prefix
}

// engineNetworkName is the engine network of node nodeID for swarm network
// netID: flotilla_<network name>_<hash>, the hash (8 hex digits of SHA-256)
// covering the node ID, the swarm network's ID and the driver's labels, so
// that flotilla nodes (or test runs, told apart by Options.Labels) sharing
// one engine never share a bridge, and a network made again under an old
// name gets a fresh one. The node and the network are in the labels too.
func (d *Driver) engineNetworkName(nodeID, netID, netName string) string {
	h := sha256.New()
	fmt.Fprintf(h, "node=%s\x00network=%s\x00", nodeID, netID)
	for _, k := range slices.Sorted(maps.Keys(d.labels)) {
		fmt.Fprintf(h, "%s=%s\x00", k, d.labels[k])
	}
	return "flotilla_" + netName + "_" + hex.EncodeToString(h.Sum(nil))[:8]
}

// ifaceName is the Linux bridge of engine network name: "fl" and the first
// 12 hex digits of its SHA-256, 14 characters (interface names hold 15).
func ifaceName(engineNetwork string) string {
	sum := sha256.Sum256([]byte(engineNetwork))
	return "fl" + hex.EncodeToString(sum[:6])
}

// netUse counts the tasks of this driver being started on an engine
// network: while it is not zero the network is not removed (a task between
// the network's creation and its container's would lose it). mu serialises
// creating and removing the network: engines before API 1.44 accept two
// networks of one name.
type netUse struct {
	mu    sync.Mutex
	users int
}

func (d *Driver) netUse(name string) *netUse {
	d.netsMu.Lock()
	defer d.netsMu.Unlock()
	u := d.nets[name]
	if u == nil {
		u = &netUse{}
		d.nets[name] = u
	}
	return u
}

// acquireBridges ensures the bridges of a task's networks on node nodeID
// and holds them (see netUse) until release is called.
func (d *Driver) acquireBridges(ctx context.Context, nodeID string, nets []driver.NetworkAttachment) (bridges []Bridge, release func(), err error) {
	var held []*netUse
	release = func() {
		for _, u := range held {
			u.mu.Lock()
			u.users--
			u.mu.Unlock()
		}
		held = nil
	}
	for _, n := range nets {
		if n.ID == "" || n.Name == "" {
			release()
			return nil, nil, errdefs.Invalid("task network %+v has no ID or name", n)
		}
		name := d.engineNetworkName(nodeID, n.ID, n.Name)
		if slices.ContainsFunc(bridges, func(b Bridge) bool { return b.EngineNetwork == name }) {
			continue
		}
		u := d.netUse(name)
		u.mu.Lock()
		b, err := d.ensureBridge(ctx, name, nodeID, n)
		if err == nil {
			u.users++
			held = append(held, u)
		}
		u.mu.Unlock()
		if err != nil {
			release()
			return nil, nil, err
		}
		bridges = append(bridges, b)
	}
	return bridges, release, nil
}

// ensureBridge returns engine network name, creating it if it is missing.
// The caller holds its netUse's mu.
func (d *Driver) ensureBridge(ctx context.Context, name, nodeID string, n driver.NetworkAttachment) (Bridge, error) {
	labels := d.bridgeLabels(nodeID)
	labels[LabelNetworkID] = n.ID
	labels[LabelNetworkName] = n.Name
	for attempt := 0; ; attempt++ {
		b, err := d.inspectBridge(ctx, name)
		if err == nil || !errdefs.Is(err, errdefs.KindNotFound) || attempt == 2 {
			return b, err
		}
		opts := map[string]string{bridgeNameOption: ifaceName(name)}
		if mtu := d.defaultMTU(ctx); mtu != "" {
			opts[mtuOption] = mtu
		}
		_, err = d.c.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			Driver:  "bridge",
			Options: opts,
			Labels:  labels,
		})
		// A conflict is another process creating it at the same moment
		// (engines from API 1.44 refuse a second network of one name):
		// inspect again.
		if err != nil && !cerrdefs.IsConflict(err) {
			return Bridge{}, classify(err, "create engine network %s for swarm network %s", name, n.Name)
		}
	}
}

// defaultMTU is the MTU of the engine's default bridge, "" when it has
// none set. The engine's --mtu (daemon.json "mtu", e.g. on a host whose
// link is below 1500) applies to the default bridge only, so the driver's
// bridges copy it.
func (d *Driver) defaultMTU(ctx context.Context) string {
	res, err := d.c.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
	if err != nil {
		return ""
	}
	return res.Network.Options[mtuOption]
}

// bridgeLabels are the labels of this driver's engine networks for node
// nodeID ("" leaves the node label out, to match any node).
func (d *Driver) bridgeLabels(nodeID string) map[string]string {
	labels := make(map[string]string, len(d.labels)+4)
	maps.Copy(labels, d.labels)
	labels[LabelManaged] = "true"
	if nodeID != "" {
		labels[LabelNodeID] = nodeID
	}
	return labels
}

// ours reports whether an engine network was made by this driver: it
// carries every label bridgeLabels("") gives and a swarm network's ID.
func (d *Driver) ours(labels map[string]string) bool {
	for k, v := range d.bridgeLabels("") {
		if labels[k] != v {
			return false
		}
	}
	return labels[LabelNetworkID] != ""
}

// inspectBridge inspects engine network name; Forbidden if this driver did
// not make it.
func (d *Driver) inspectBridge(ctx context.Context, name string) (Bridge, error) {
	res, err := d.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return Bridge{}, classify(err, "inspect engine network %s", name)
	}
	return d.bridgeOf(res.Network.Network)
}

func (d *Driver) bridgeOf(n network.Network) (Bridge, error) {
	if !d.ours(n.Labels) {
		return Bridge{}, errdefs.Forbidden("engine network %s was not made by this flotilla node: leaving it alone", n.Name)
	}
	b := Bridge{
		NetworkID:     n.Labels[LabelNetworkID],
		NetworkName:   n.Labels[LabelNetworkName],
		EngineNetwork: n.Name,
		Iface:         n.Options[bridgeNameOption],
	}
	for _, c := range n.IPAM.Config {
		if c.Subnet.Addr().Is4() {
			b.Subnet, b.Gateway = c.Subnet, c.Gateway
			break
		}
	}
	if !b.Subnet.IsValid() || !b.Gateway.IsValid() {
		return b, fmt.Errorf("engine network %s has no IPv4 subnet and gateway", n.Name)
	}
	return b, nil
}

// Bridges lists the engine networks this driver (its Options.Labels) made
// for node nodeID ("" = for any node): what an agent reconciles at
// start-up, e.g. to restart the DNS listeners and capture rules of the
// bridges its tasks are still on. A bridge the engine lists without a
// subnet (being made or removed) is left out.
func (d *Driver) Bridges(ctx context.Context, nodeID string) ([]Bridge, error) {
	f := client.Filters{}
	for k, v := range d.bridgeLabels(nodeID) {
		f.Add("label", k+"="+v)
	}
	res, err := d.c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, classify(err, "list engine networks")
	}
	var out []Bridge
	for _, n := range res.Items {
		if b, err := d.bridgeOf(n.Network); err == nil {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Bridge) int { return strings.Compare(a.EngineNetwork, b.EngineNetwork) })
	return out, nil
}

// RemoveBridges removes the engine networks this driver made for node
// nodeID ("" = any node) that no running container is on, calling
// Options.NetworkGone for each: for a node that leaves its swarm, after
// its tasks are removed, or at start-up for bridges left by a task that
// never started. A bridge still in use stays.
func (d *Driver) RemoveBridges(ctx context.Context, nodeID string) error {
	bs, err := d.Bridges(ctx, nodeID)
	if err != nil {
		return err
	}
	return d.removeUnused(ctx, engineNetworks(bs))
}

func engineNetworks(bs []Bridge) []string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.EngineNetwork
	}
	return names
}

// removeUnused removes those of the engine networks named that this driver
// made and no running container is on (nor a task this driver is
// starting), calling Options.NetworkGone for each one removed.
func (d *Driver) removeUnused(ctx context.Context, names []string) error {
	var errs []error
	for _, name := range names {
		if err := d.removeIfUnused(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Driver) removeIfUnused(ctx context.Context, name string) error {
	u := d.netUse(name)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.users > 0 {
		return nil
	}
	res, err := d.c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return classify(err, "inspect engine network %s", name)
	}
	if !d.ours(res.Network.Labels) || len(res.Network.Containers) > 0 {
		return nil
	}
	b, _ := d.bridgeOf(res.Network.Network)
	_, err = d.c.NetworkRemove(ctx, res.Network.ID, client.NetworkRemoveOptions{})
	switch {
	case cerrdefs.IsNotFound(err):
		return nil
	case isActiveEndpoints(err):
		return nil // a container joined it meanwhile (another node's driver cannot: the name is ours)
	case err != nil:
		return classify(err, "remove engine network %s", name)
	}
	if d.networkGone != nil {
		d.networkGone(b)
	}
	return nil
}

// isActiveEndpoints recognises the engine's refusal to remove a network a
// container is still on (403, "network NAME id ID has active endpoints").
func isActiveEndpoints(err error) bool {
	return err != nil && cerrdefs.IsPermissionDenied(err) && strings.Contains(err.Error(), "active endpoints")
}

// taskBridgeNames are the engine networks of a container that look like
// this driver's bridges, in no particular order (removeIfUnused checks
// their labels).
func taskBridgeNames(nets map[string]*network.EndpointSettings) []string {
	var names []string
	for name := range nets {
		if strings.HasPrefix(name, "flotilla_") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// dnsServer is the address the engine's embedded DNS forwards a task's
// other names to: the host of spec.DNS, which must be an IP address with
// port 53 or none. The engine takes only addresses for --dns, and always
// queries them on port 53. An unspecified address (0.0.0.0:53) stands for
// the gateway of the task's first bridge, which the agent cannot know
// before the bridge exists (the engine chooses its subnet): there the
// PrepareNetwork hook starts the node's DNS listener.
func dnsServer(taskID, dns string) (netip.Addr, error) {
	host, port := dns, "53"
	if h, p, err := net.SplitHostPort(dns); err == nil {
		host, port = h, p
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, errdefs.Invalid("task %s: DNS server %q is not an IP address (the engine takes no names for --dns)", taskID, dns)
	}
	if port != "53" {
		return netip.Addr{}, errdefs.Invalid("task %s: DNS server %q: the engine's --dns queries port 53 only", taskID, dns)
	}
	return ip.Unmap(), nil
}
