package docker_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/docker"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// hooks records the network hooks' calls.
type hooks struct {
	mu       sync.Mutex
	prepared []docker.Bridge
	gone     []docker.Bridge
	// early lists what went wrong when PrepareNetwork ran: the task's
	// container already existed.
	early []string
	fail  error
	d     *docker.Driver
	label string // the driver's test label
	// running is the number of containers the driver has when a task
	// starts.
	running int
}

func (h *hooks) options() docker.Options {
	return docker.Options{PrepareNetwork: h.prepare, NetworkGone: h.networkGone}
}

func (h *hooks) prepare(ctx context.Context, b docker.Bridge) error {
	// The task's container must not exist yet: none of this driver's.
	res, err := h.d.Client().ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", docker.LabelManaged+"=true", testLabel+"="+h.label)})
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil:
		h.early = append(h.early, err.Error())
	case len(res.Items) > h.running:
		h.early = append(h.early, "a container exists while preparing "+b.EngineNetwork)
	}
	h.prepared = append(h.prepared, b)
	return h.fail
}

func (h *hooks) networkGone(b docker.Bridge) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gone = append(h.gone, b)
}

func (h *hooks) snapshot() (prepared, gone []docker.Bridge, early []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.prepared), slices.Clone(h.gone), slices.Clone(h.early)
}

// newNetDriver is a test's first driver, with recording hooks.
func newNetDriver(t *testing.T) (*docker.Driver, *hooks) {
	t.Helper()
	h := &hooks{label: runID + "-" + t.Name()}
	d := newDriverOpts(t, "", h.options())
	h.d = d
	return d, h
}

func attach(name string, addr string) driver.NetworkAttachment {
	return driver.NetworkAttachment{ID: randHex(12), Name: name, Addr: netip.MustParsePrefix(addr)}
}

// wantIface is the interface name the driver promises: "fl" and 12 hex
// digits of the engine network name's SHA-256.
func wantIface(engineNetwork string) string {
	sum := sha256.Sum256([]byte(engineNetwork))
	return "fl" + hex.EncodeToString(sum[:])[:12]
}

func bridgeNames(bs []docker.Bridge) []string {
	var names []string
	for _, b := range bs {
		names = append(names, b.NetworkName)
	}
	slices.Sort(names)
	return names
}

func TestTaskOnTwoNetworks(t *testing.T) {
	d, hk := newNetDriver(t)
	ctx := ctxT(t, 2*time.Minute)
	front, back := attach("front", "10.0.1.5/24"), attach("back", "10.0.2.5/24")
	s := spec(t)
	s.Networks = []driver.NetworkAttachment{front, back}
	s.DNS = "10.0.1.2:53"
	h1, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := d.Bridges(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := bridgeNames(bs); !slices.Equal(got, []string{"back", "front"}) {
		t.Fatalf("bridges %+v", bs)
	}
	byName := map[string]docker.Bridge{}
	for _, b := range bs {
		byName[b.NetworkName] = b
		want := map[string]string{"front": front.ID, "back": back.ID}[b.NetworkName]
		if b.NetworkID != want || !strings.HasPrefix(b.EngineNetwork, "flotilla_"+b.NetworkName+"_") {
			t.Errorf("bridge %+v", b)
		}
		if b.Iface != wantIface(b.EngineNetwork) || len(b.Iface) > 15 {
			t.Errorf("bridge %s: interface %q, want %q", b.EngineNetwork, b.Iface, wantIface(b.EngineNetwork))
		}
		if !b.Subnet.Contains(b.Gateway) || b.Subnet.Overlaps(front.Addr) || b.Subnet.Overlaps(back.Addr) {
			t.Errorf("bridge %s: subnet %s gateway %s", b.EngineNetwork, b.Subnet, b.Gateway)
		}
		// The engine is on this host: the bridge is here, with the gateway.
		if ifc, err := net.InterfaceByName(b.Iface); err != nil {
			t.Errorf("bridge %s: %v", b.Iface, err)
		} else if addrs, _ := ifc.Addrs(); !slices.ContainsFunc(addrs, func(a net.Addr) bool {
			return strings.HasPrefix(a.String(), b.Gateway.String()+"/")
		}) {
			t.Errorf("bridge %s has addresses %v, not the gateway %s", b.Iface, addrs, b.Gateway)
		}
		n, err := d.Client().NetworkInspect(ctx, b.EngineNetwork, client.NetworkInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{docker.LabelManaged: "true", docker.LabelNetworkID: b.NetworkID,
			docker.LabelNetworkName: b.NetworkName, docker.LabelNodeID: "node-1"} {
			if n.Network.Labels[k] != v {
				t.Errorf("network %s: label %s = %q, want %q", b.EngineNetwork, k, n.Network.Labels[k], v)
			}
		}
		if n.Network.Driver != "bridge" {
			t.Errorf("network %s: driver %s", b.EngineNetwork, n.Network.Driver)
		}
		def, err := d.Client().NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		const mtu = "com.docker.network.driver.mtu"
		if n.Network.Options[mtu] != def.Network.Options[mtu] {
			t.Errorf("network %s: MTU %q, the default bridge's %q", b.EngineNetwork, n.Network.Options[mtu], def.Network.Options[mtu])
		}
		if ifc, err := net.InterfaceByName(b.Iface); err == nil && def.Network.Options[mtu] != "" && strconv.Itoa(ifc.MTU) != def.Network.Options[mtu] {
			t.Errorf("bridge %s: MTU %d, the default bridge's %s", b.Iface, ifc.MTU, def.Network.Options[mtu])
		}
	}
	ins, err := d.Client().ContainerInspect(ctx, h1.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := ins.Container
	if string(c.HostConfig.NetworkMode) != byName["front"].EngineNetwork {
		t.Errorf("network mode %s, want the first network's bridge", c.HostConfig.NetworkMode)
	}
	if !slices.Equal(c.HostConfig.DNS, []netip.Addr{netip.MustParseAddr("10.0.1.2")}) {
		t.Errorf("DNS %v", c.HostConfig.DNS)
	}
	var frontIP netip.Addr
	for _, b := range bs {
		ep := c.NetworkSettings.Networks[b.EngineNetwork]
		if ep == nil || !b.Subnet.Contains(ep.IPAddress) {
			t.Fatalf("container not on %s: %+v", b.EngineNetwork, c.NetworkSettings.Networks)
		}
		if b.NetworkName == "front" {
			frontIP = ep.IPAddress
		}
	}
	if len(c.NetworkSettings.Networks) != 2 {
		t.Errorf("container networks %v", slices.Collect(maps.Keys(c.NetworkSettings.Networks)))
	}
	for i := 0; i < 3; i++ { // the same answer every time
		if ep, err := d.Endpoint(ctx, h1, driver.Port{Target: 80, Proto: "tcp"}); err != nil || ep != netip.AddrPortFrom(frontIP, 80).String() {
			t.Fatalf("Endpoint %q %v, want the address on the first network's bridge %s", ep, err, frontIP)
		}
	}
	prepared, _, early := hk.snapshot()
	if got := bridgeNames(prepared); !slices.Equal(got, []string{"back", "front"}) || len(early) > 0 {
		t.Errorf("PrepareNetwork saw %+v (%v)", prepared, early)
	}

	// A second task of front on this node shares its bridge.
	hk.mu.Lock()
	hk.running = 1
	hk.mu.Unlock()
	s2 := spec(t)
	s2.Networks = []driver.NetworkAttachment{attach("front", "10.0.1.6/24")}
	s2.Networks[0].ID = front.ID
	h2, err := d.Start(ctx, s2)
	if err != nil {
		t.Fatal(err)
	}
	ins2, err := d.Client().ContainerInspect(ctx, h2.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nets := ins2.Container.NetworkSettings.Networks; len(nets) != 1 || nets[byName["front"].EngineNetwork] == nil ||
		nets[byName["front"].EngineNetwork].NetworkID != c.NetworkSettings.Networks[byName["front"].EngineNetwork].NetworkID {
		t.Errorf("second task's networks: %+v", nets)
	}
	if bs2, _ := d.Bridges(ctx, "node-1"); len(bs2) != 2 {
		t.Errorf("bridges after a second task: %+v", bs2)
	}
	if prepared, _, early := hk.snapshot(); len(prepared) != 3 || prepared[2] != byName["front"] || len(early) > 0 {
		t.Errorf("PrepareNetwork for the second task: %+v (%v)", prepared, early)
	}

	// Removing the first task removes back (no one else is on it).
	if err := d.Remove(ctx, h1); err != nil {
		t.Fatal(err)
	}
	if bs, _ := d.Bridges(ctx, "node-1"); !slices.Equal(bridgeNames(bs), []string{"front"}) {
		t.Errorf("bridges after removing the first task: %+v", bs)
	}
	if _, gone, _ := hk.snapshot(); len(gone) != 1 || gone[0] != byName["back"] {
		t.Errorf("NetworkGone after removing the first task: %+v", gone)
	}
	if _, err := net.InterfaceByName(byName["back"].Iface); err == nil {
		t.Errorf("interface %s is still there", byName["back"].Iface)
	}
	// The last task of front: front goes too.
	if err := d.Remove(ctx, h2); err != nil {
		t.Fatal(err)
	}
	if bs, err := d.Bridges(ctx, ""); len(bs) != 0 || err != nil {
		t.Errorf("bridges after removing every task: %+v %v", bs, err)
	}
	if _, gone, _ := hk.snapshot(); len(gone) != 2 || gone[1] != byName["front"] {
		t.Errorf("NetworkGone after removing the last task: %+v", gone)
	}
}

// Flotilla nodes sharing one engine (or one node's former identities) get
// bridges of their own for one swarm network, and see only theirs.
func TestBridgesPerNode(t *testing.T) {
	d1, _ := newNetDriver(t)
	d2 := newDriverOpts(t, "-other", docker.Options{})
	ctx := ctxT(t, 2*time.Minute)
	n := attach("shared", "10.0.3.5/24")
	start := func(d *docker.Driver, node string) driver.Handle {
		t.Helper()
		s := spec(t)
		s.NodeID = node
		s.Networks = []driver.NetworkAttachment{n}
		h, err := d.Start(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	hs := []driver.Handle{start(d1, "node-1"), start(d2, "node-2"), start(d1, "node-3")}
	b1, _ := d1.Bridges(ctx, "node-1")
	b2, _ := d2.Bridges(ctx, "")
	b3, _ := d1.Bridges(ctx, "node-3")
	all1, _ := d1.Bridges(ctx, "")
	if len(b1) != 1 || len(b2) != 1 || len(b3) != 1 || len(all1) != 2 {
		t.Fatalf("bridges: node-1 %+v, other driver %+v, node-3 %+v, first driver %+v", b1, b2, b3, all1)
	}
	seen := map[string]bool{}
	for _, b := range []docker.Bridge{b1[0], b2[0], b3[0]} {
		if b.NetworkID != n.ID || seen[b.EngineNetwork] || seen[b.Iface] || seen[b.Subnet.String()] {
			t.Errorf("bridges are not apart: %+v %+v %+v", b1[0], b2[0], b3[0])
		}
		seen[b.EngineNetwork], seen[b.Iface], seen[b.Subnet.String()] = true, true, true
	}
	for i, h := range hs {
		d := d1
		if i == 1 {
			d = d2
		}
		if err := d.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []*docker.Driver{d1, d2} {
		if bs, _ := d.Bridges(ctx, ""); len(bs) != 0 {
			t.Errorf("bridges left: %+v", bs)
		}
	}
}

// Tasks of one network starting at once on one node make one bridge.
func TestConcurrentStartsShareTheBridge(t *testing.T) {
	d, _ := newNetDriver(t)
	ctx := ctxT(t, 2*time.Minute)
	n := attach("busy", "10.0.4.5/24")
	const tasks = 4
	hs := make([]driver.Handle, tasks)
	errs := make([]error, tasks)
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := spec(t)
			s.Networks = []driver.NetworkAttachment{n}
			hs[i], errs[i] = d.Start(ctx, s)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if bs, err := d.Bridges(ctx, ""); len(bs) != 1 || err != nil {
		t.Fatalf("bridges %+v %v", bs, err)
	}
	// Removing them at once, while another starts, leaves the bridge to
	// the one that started.
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Remove(ctx, hs[i])
		}()
	}
	s := spec(t)
	s.Networks = []driver.NetworkAttachment{n}
	last, err := d.Start(ctx, s)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if running, _, err := d.Recover(ctx, last); !running || err != nil {
		t.Fatalf("last task: %v %v", running, err)
	}
	if bs, err := d.Bridges(ctx, ""); len(bs) != 1 || err != nil {
		t.Fatalf("bridges with one task left %+v %v", bs, err)
	}
	if err := d.Remove(ctx, last); err != nil {
		t.Fatal(err)
	}
	if bs, err := d.Bridges(ctx, ""); len(bs) != 0 || err != nil {
		t.Fatalf("bridges left %+v %v", bs, err)
	}
}

func TestPrepareNetworkFailsStart(t *testing.T) {
	d, hk := newNetDriver(t)
	ctx := ctxT(t, 2*time.Minute)
	boom := errors.New("no DNS listener for you")
	hk.fail = boom
	s := spec(t)
	s.Networks = []driver.NetworkAttachment{attach("doomed", "10.0.5.5/24")}
	if _, err := d.Start(ctx, s); !errors.Is(err, boom) {
		t.Fatalf("Start: %v, want the hook's error", err)
	}
	if list, err := d.List(ctx, ""); len(list) != 0 || err != nil {
		t.Errorf("containers left: %+v %v", list, err)
	}
	prepared, gone, _ := hk.snapshot()
	if bs, _ := d.Bridges(ctx, ""); len(bs) != 0 || len(prepared) != 1 || len(gone) != 1 || gone[0] != prepared[0] {
		t.Errorf("after a failed start: bridges %+v, prepared %+v, gone %+v", bs, prepared, gone)
	}
}

func TestNetworkSpecErrors(t *testing.T) {
	d, hk := newNetDriver(t)
	ctx := ctxT(t, time.Minute)
	for _, c := range []struct {
		network, dns string
		nets         bool
		want         string
	}{
		{network: "host", nets: true, want: "network mode"},
		{dns: "10.0.0.2:5353", nets: true, want: "port 53 only"},
		{dns: "dns.example:53", nets: true, want: "not an IP address"},
		{dns: "0.0.0.0:53", want: "on no network"},
	} {
		s := spec(t)
		s.Network, s.DNS = c.network, c.dns
		if c.nets {
			s.Networks = []driver.NetworkAttachment{attach("x", "10.0.6.5/24")}
		}
		if _, err := d.Start(ctx, s); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("network %q dns %q: %v", c.network, c.dns, err)
		}
	}
	if prepared, _, _ := hk.snapshot(); len(prepared) != 0 {
		t.Errorf("bad specs prepared %+v", prepared)
	}
	if bs, _ := d.Bridges(ctx, ""); len(bs) != 0 {
		t.Errorf("bad specs made bridges %+v", bs)
	}
}

// The finding this test shows (Docker 20.10 here): a container on a
// user-defined bridge resolves through the engine's embedded DNS
// (127.0.0.11), which forwards a name it does not know to the --dns server
// from inside the container's network namespace: the query arrives at the
// bridge's gateway from the container's own address on that bridge (the
// source port is random). So the node's DNS server, listening on each
// bridge's gateway, knows a query's swarm network by the address it came
// in on (the bridge's gateway), and the task by its source.
func TestEmbeddedDNSForwardsFromTheTaskAddress(t *testing.T) {
	queries := make(chan dnsQuery, 16)
	hk := &hooks{}
	var listeners []*net.UDPConn
	opts := hk.options()
	opts.PrepareNetwork = func(ctx context.Context, b docker.Bridge) error {
		// What the agent will do: listen on the bridge's gateway.
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.Gateway, 53)))
		if err != nil {
			return err
		}
		listeners = append(listeners, pc)
		go serveDNS(pc, queries)
		return nil
	}
	d := newDriverOpts(t, "", opts)
	t.Cleanup(func() {
		for _, pc := range listeners {
			pc.Close()
		}
	})
	ctx := ctxT(t, 2*time.Minute)
	s := spec(t, "LOOKUP=probe.flotilla.test")
	s.Networks = []driver.NetworkAttachment{attach("dns", "10.0.7.5/24"), attach("other", "10.0.8.5/24")}
	s.DNS = "0.0.0.0:53" // the first bridge's gateway
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	waitForLine(t, d, h, "ready")
	logs := text(collect(t, d, h, driver.LogOptions{Tail: -1}))
	bs, err := d.Bridges(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var first docker.Bridge
	for _, b := range bs {
		if b.NetworkName == "dns" {
			first = b
		}
	}
	ins, err := d.Client().ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ins.Container.HostConfig.DNS, []netip.Addr{first.Gateway}) {
		t.Errorf("DNS %v, want the first bridge's gateway %s", ins.Container.HostConfig.DNS, first.Gateway)
	}
	taskIP := ins.Container.NetworkSettings.Networks[first.EngineNetwork].IPAddress
	var got []dnsQuery
	for len(queries) > 0 {
		got = append(got, <-queries)
	}
	if len(got) == 0 {
		t.Fatalf("no query reached the gateway %s; task said:\n%s", first.Gateway, logs)
	}
	for _, q := range got {
		t.Logf("query for %s from %s (task %s on %s, gateway %s)", q.name, q.src, taskIP, first.EngineNetwork, first.Gateway)
		if q.src.Addr() != taskIP || q.name != "probe.flotilla.test." {
			t.Errorf("query for %s from %s, want from the task's address %s on the bridge", q.name, q.src, taskIP)
		}
	}
	if !strings.Contains(logs, "lookup probe.flotilla.test: 192.0.2.53") {
		t.Errorf("the task did not get the listener's answer:\n%s", logs)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

type dnsQuery struct {
	src  netip.AddrPort
	name string
}

// serveDNS answers A queries with 192.0.2.53 and others with no records,
// and reports every query.
func serveDNS(pc *net.UDPConn, queries chan<- dnsQuery) {
	buf := make([]byte, 1500)
	for {
		n, src, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg := buf[:n]
		if len(msg) < 12 || binary.BigEndian.Uint16(msg[4:]) != 1 {
			continue
		}
		// The question: labels, then type and class.
		var labels []string
		i := 12
		for i < len(msg) && msg[i] != 0 {
			l := int(msg[i])
			if i+1+l > len(msg) {
				break
			}
			labels = append(labels, string(msg[i+1:i+1+l]))
			i += 1 + l
		}
		if i+5 > len(msg) {
			continue
		}
		qtype := binary.BigEndian.Uint16(msg[i+1:])
		end := i + 5
		select {
		case queries <- dnsQuery{netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), strings.Join(labels, ".") + "."}:
		default:
		}
		resp := append([]byte(nil), msg[:end]...)
		resp[2] |= 0x80                         // QR
		resp[3] = 0x80                          // RA, NOERROR
		binary.BigEndian.PutUint16(resp[8:], 0) // no authority
		binary.BigEndian.PutUint16(resp[10:], 0)
		if qtype == 1 {
			binary.BigEndian.PutUint16(resp[6:], 1)
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 192, 0, 2, 53)
		}
		_, _ = pc.WriteToUDPAddrPort(resp, src)
	}
}

// The one error removing a bridge ignores is the engine's refusal to remove
// a network a container is on; RemoveBridges leaves a bridge in use and
// removes one whose containers are gone.
func TestActiveEndpointsError(t *testing.T) {
	d, hk := newNetDriver(t)
	ctx := ctxT(t, time.Minute)
	s := spec(t)
	s.Networks = []driver.NetworkAttachment{attach("inuse", "10.0.9.5/24")}
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := d.Bridges(ctx, "")
	if err != nil || len(bs) != 1 {
		t.Fatalf("bridges %+v %v", bs, err)
	}
	_, err = d.Client().NetworkRemove(ctx, bs[0].EngineNetwork, client.NetworkRemoveOptions{})
	if !docker.IsActiveEndpoints(err) {
		t.Fatalf("removing a bridge in use: %v, not recognised", err)
	}
	t.Logf("removing a bridge in use: %v", err)
	if err := d.RemoveBridges(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if bs, _ := d.Bridges(ctx, ""); len(bs) != 1 {
		t.Fatalf("RemoveBridges removed a bridge in use: %+v", bs)
	}
	// The container goes behind the driver's back (as if the agent died
	// before removing the task): the bridge stays until RemoveBridges.
	if _, err := d.Client().ContainerRemove(ctx, h.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if bs, _ := d.Bridges(ctx, ""); len(bs) != 1 {
		t.Fatalf("bridges %+v", bs)
	}
	if err := d.RemoveBridges(ctx, "node-1"); err != nil {
		t.Fatal(err)
	}
	if left, _ := d.Bridges(ctx, ""); len(left) != 0 {
		t.Fatalf("RemoveBridges left %+v", left)
	}
	if _, gone, _ := hk.snapshot(); len(gone) != 1 || gone[0] != bs[0] {
		t.Errorf("NetworkGone: %+v", gone)
	}
}
