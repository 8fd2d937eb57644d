// Package discovery is a node's side of service discovery on swarm
// networks: it feeds the managers' table to the DNS servers that answer
// the networks' names to this node's tasks, keeps the nat rules that send
// connections for the networks' subnets to the routing mesh, and takes
// those connections from the capture listener to the mesh.
//
// Each DNS listener answers one scope: a docker bridge (on its gateway,
// the names of its swarm network), or a process task (on the task's own
// loopback address, the names of its networks). A client thus resolves
// only the names of the networks it is on.
package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/flotilla-org/flotilla/agent/dns"
	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/mesh"
	"github.com/flotilla-org/flotilla/agent/netrules"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// DNSPort is where the DNS listeners answer. Docker's embedded DNS
// forwards to port 53 only; a process task is told its server's port.
const DNSPort = 53

// Config is what a node's discovery needs.
type Config struct {
	Mesh *mesh.Mesh
	// Rules are the node's capture rules; nil captures nothing (the node
	// cannot change nat rules: its tasks reach no service by address).
	Rules *netrules.Rules
	// Upstream are the resolvers other names are forwarded to.
	Upstream []string
	Log      *slog.Logger
	// HostNets lists the networks the host is on (default: its
	// interfaces and routes): a swarm subnet overlapping one is not
	// captured.
	HostNets func() []netip.Prefix
}

// Bridge is a docker bridge of this node for one swarm network.
type Bridge struct {
	NetworkID string
	Iface     string
	Gateway   netip.Addr
	Subnet    netip.Prefix
}

// Discovery is one node's service discovery.
type Discovery struct {
	cfg Config

	mu      sync.Mutex
	closed  bool
	nets    map[string]nodeapi.RouteNetwork
	records map[string]map[string][]netip.Addr // by network ID
	scopes  map[string]*scope                  // by "task:ID" or "bridge:NETID"
	bridges map[string]Bridge                  // by network ID
	// clients are the networks of this node's containers, by address
	// (from TaskStarted): a container on several networks resolves and
	// reaches all of them, whichever bridge its packets leave on.
	clients  map[netip.Addr][]string
	owners   map[string][]netip.Addr // a task's addresses in clients
	capture  *mesh.CaptureListener
	rulesKey string                // what was applied last
	rulesErr string                // the last failure logged
	clashed  map[netip.Prefix]bool // subnets left uncaptured, logged once
}

// scope is one DNS listener and the networks whose names it answers.
type scope struct {
	srv      *dns.Server
	networks []string
}

// New returns a node's discovery; Start opens its capture listener.
func New(cfg Config) *Discovery {
	return &Discovery{cfg: cfg, nets: map[string]nodeapi.RouteNetwork{}, scopes: map[string]*scope{}, bridges: map[string]Bridge{},
		clients: map[netip.Addr][]string{}, owners: map[string][]netip.Addr{}}
}

// listenCaptureLocked opens the listener for captured connections the
// first time there is a subnet to capture (on all addresses: a redirect
// goes to the address of the interface the packet came in on), and hands
// what it accepts to the mesh. A node on no network opens no port.
func (d *Discovery) listenCaptureLocked() error {
	if d.capture != nil {
		return nil
	}
	l, err := mesh.ListenCapture(":0")
	if err != nil {
		return err
	}
	d.capture = l
	go func() {
		for {
			c, err := l.Accept()
			if errors.Is(err, mesh.ErrNoOriginalDst) {
				continue
			}
			if err != nil {
				return
			}
			go d.cfg.Mesh.ServeCaptured(c.Conn, c.Dst, d.allowed)
		}
	}()
	return nil
}

// allowed says whether a captured connection from client may reach a
// network: a container only its bridge's network; the node's own
// processes (process tasks share the node's network) any.
func (d *Discovery) allowed(client netip.Addr, network string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if nets, ok := d.clients[client]; ok {
		return slices.Contains(nets, network)
	}
	for id, b := range d.bridges {
		if b.Subnet.Contains(client) {
			return id == network
		}
	}
	return true
}

// Update takes a new table from the managers: names for every scope,
// and capture rules for the networks' subnets.
func (d *Discovery) Update(resp nodeapi.RoutesResponse) {
	records := recordsByNetwork(resp.Services)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	nets := map[string]nodeapi.RouteNetwork{}
	for _, n := range resp.Networks {
		nets[n.ID] = n
	}
	changed := !maps.Equal(nets, d.nets)
	d.nets = nets
	d.records = records
	for _, s := range d.scopes {
		s.srv.SetRecords(union(records, s.networks))
	}
	if changed || d.rulesErr != "" {
		// Most tables change only tasks: the rules (and the host's
		// networks they are checked against) follow the networks, and
		// are tried again after a failure.
		d.applyRulesLocked()
	}
}

// applyRulesLocked makes the nat rules capture every network's subnet
// from the node's processes and from its bridges (d.mu held).
func (d *Discovery) applyRulesLocked() {
	if d.cfg.Rules == nil {
		return
	}
	var subnets []netip.Prefix
	var host []netip.Prefix
	if len(d.nets) > 0 {
		host = d.hostNets()
	}
	clashed := map[netip.Prefix]bool{}
	for _, n := range d.nets {
		if h, ok := clashes(n.Subnet, host); ok {
			clashed[n.Subnet] = true
			if !d.clashed[n.Subnet] {
				d.cfg.Log.Error("service discovery: a swarm network's subnet overlaps a network this host is on, so this node does not capture it: its tasks cannot reach that network's services by address; recreate the network with --subnet outside the hosts' networks",
					"network", n.Name, "subnet", n.Subnet, "host network", h)
			}
			continue
		}
		subnets = append(subnets, n.Subnet)
	}
	d.clashed = clashed
	slices.SortFunc(subnets, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	var in, internal []string
	for id, b := range d.bridges {
		in = append(in, b.Iface)
		if d.nets[id].Internal {
			internal = append(internal, b.Iface)
		}
	}
	slices.Sort(in)
	slices.Sort(internal)
	if len(subnets) == 0 && d.rulesKey == "" && d.rulesErr == "" {
		return // nothing captured, nothing applied
	}
	port := 0
	if len(subnets) > 0 {
		if err := d.listenCaptureLocked(); err != nil {
			if err.Error() != d.rulesErr {
				d.cfg.Log.Warn("service discovery: cannot listen for captured connections; tasks cannot reach services by address on this node", "err", err)
			}
			d.rulesErr, d.rulesKey = err.Error(), ""
			return
		}
		port = d.capture.Addr().(*net.TCPAddr).Port
	}
	key := fmt.Sprint(subnets, in, internal, port)
	if key == d.rulesKey {
		return
	}
	err := d.cfg.Rules.SetIn(in)
	if err == nil && len(subnets) == 0 {
		err = d.cfg.Rules.RemoveCapture()
	} else if err == nil {
		if err = d.cfg.Rules.Apply(subnets, port); err == nil {
			// Internal networks' containers reach nothing the node routes.
			err = d.cfg.Rules.Isolate(internal)
		}
	}
	if err != nil {
		if err.Error() != d.rulesErr {
			d.cfg.Log.Warn("service discovery: cannot set the capture rules; tasks cannot reach services by address", "err", err)
		}
		d.rulesErr, d.rulesKey = err.Error(), ""
		return
	}
	d.rulesErr, d.rulesKey = "", key
}

func (d *Discovery) hostNets() []netip.Prefix {
	if d.cfg.HostNets != nil {
		return d.cfg.HostNets()
	}
	return hostNets()
}

// NetworkName is a network's name, or its ID when the table lacks it.
func (d *Discovery) NetworkName(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.nets[id]; ok {
		return n.Name
	}
	return id
}

// listen opens a DNS listener for a scope on host (port DNSPort, or any
// port when fallback and DNSPort cannot be bound, e.g. not root). It
// returns the address it answers on.
func (d *Discovery) listen(key string, host netip.Addr, networks []string, fallback bool, forClient func(netip.Addr) map[string][]netip.Addr) (string, error) {
	upstream := d.cfg.Upstream
	d.mu.Lock()
	if s := d.scopes[key]; s != nil {
		s.networks = networks
		s.srv.SetRecords(union(d.records, networks))
		d.mu.Unlock()
		return s.srv.Addr(), nil
	}
	for _, n := range networks {
		if d.nets[n].Internal {
			upstream = nil // an internal network resolves only its own names
		}
	}
	d.mu.Unlock()
	srv := dns.New(upstream)
	srv.ForClient = forClient
	err := srv.Listen(net.JoinHostPort(host.String(), strconv.Itoa(DNSPort)))
	if err != nil && fallback {
		err = srv.Listen(net.JoinHostPort(host.String(), "0"))
	}
	if err != nil {
		return "", fmt.Errorf("service discovery: DNS server on %s: %w", host, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.scopes[key] != nil {
		srv.Close()
		if s := d.scopes[key]; s != nil {
			return s.srv.Addr(), nil
		}
		return "", errors.New("service discovery: stopped")
	}
	srv.SetRecords(union(d.records, networks))
	d.scopes[key] = &scope{srv: srv, networks: networks}
	return srv.Addr(), nil
}

func (d *Discovery) unlisten(key string) {
	d.mu.Lock()
	s := d.scopes[key]
	delete(d.scopes, key)
	d.mu.Unlock()
	if s != nil {
		s.srv.Close()
	}
}

// AttachTask starts the DNS server of a task that has no network
// namespace (a process task) on its own loopback address, answering the
// names of its networks, and returns its address (host:port).
func (d *Discovery) AttachTask(taskID string, nets []driver.NetworkAttachment) (string, error) {
	host, ok := driver.TaskLoopback(nets)
	if !ok {
		return "", fmt.Errorf("service discovery: task %s has no IPv4 address on a swarm network", taskID)
	}
	var ids []string
	for _, n := range nets {
		ids = append(ids, n.ID)
	}
	return d.listen("task:"+taskID, host, ids, true, nil)
}

// DetachTask stops a task's DNS server and forgets its addresses.
func (d *Discovery) DetachTask(taskID string) {
	d.unlisten("task:" + taskID)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.owners[taskID] {
		delete(d.clients, a)
	}
	delete(d.owners, taskID)
}

// TaskStarted records the addresses of a task with a network namespace
// of its own (a container on bridges) and the swarm networks it is on.
func (d *Discovery) TaskStarted(taskID string, addrs []netip.Addr, nets []driver.NetworkAttachment) {
	var ids []string
	for _, n := range nets {
		ids = append(ids, n.ID)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range d.owners[taskID] {
		delete(d.clients, a)
	}
	d.owners[taskID] = addrs
	for _, a := range addrs {
		d.clients[a] = ids
	}
}

// clientRecords are the names a container answers from: those of all its
// networks (nil for an address no task of this node has).
func (d *Discovery) clientRecords(client netip.Addr) map[string][]netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	nets, ok := d.clients[client]
	if !ok {
		return nil
	}
	return union(d.records, nets)
}

// AddBridge serves a docker bridge: its containers' DNS on its gateway,
// and their connections to swarm subnets captured on it.
func (d *Discovery) AddBridge(b Bridge) error {
	if _, err := d.listen("bridge:"+b.NetworkID, b.Gateway, []string{b.NetworkID}, false, d.clientRecords); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bridges[b.NetworkID] = b
	d.applyRulesLocked()
	return nil
}

// RemoveBridge stops serving a bridge that is gone.
func (d *Discovery) RemoveBridge(networkID string) {
	d.unlisten("bridge:" + networkID)
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.bridges, networkID)
	d.applyRulesLocked()
}

// Close stops every DNS server and the capture listener, and removes the
// capture rules.
func (d *Discovery) Close() {
	d.mu.Lock()
	d.closed = true
	scopes := d.scopes
	d.scopes = map[string]*scope{}
	capture := d.capture
	applied := d.rulesKey != "" || d.rulesErr != ""
	d.mu.Unlock()
	for _, s := range scopes {
		s.srv.Close()
	}
	if capture != nil {
		capture.Close()
	}
	if d.cfg.Rules != nil && applied {
		if err := d.cfg.Rules.RemoveCapture(); err != nil {
			d.cfg.Log.Warn("service discovery: cannot remove the capture rules", "err", err)
		}
	}
}
