package manager

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

// netStore is a store holding a cluster object and the given ops.
type netStore struct {
	t     *testing.T
	s     *state.Store
	index uint64
}

func newNetStore(t *testing.T) *netStore {
	ns := &netStore{t: t, s: state.NewStore()}
	c := &state.Cluster{}
	c.ID = "cluster"
	ns.apply(state.NewOp(state.TableCluster, state.ActionCreate, c, 0))
	return ns
}

func (ns *netStore) apply(ops ...state.Op) {
	ns.t.Helper()
	ns.index++
	if err := ns.s.Apply(ns.index, state.Batch{Ops: ops, Time: time.Now()}); err != nil {
		ns.t.Fatal(err)
	}
}

// create stores a network made from spec and returns it.
func (ns *netStore) create(spec swarm.NetworkSpec) *state.Network {
	ns.t.Helper()
	n, err := newNetwork(ns.s.View(), spec)
	if err != nil {
		ns.t.Fatalf("create %s: %v", spec.Name, err)
	}
	ns.apply(state.NewOp(state.TableNetworks, state.ActionCreate, n, 0))
	return ns.s.Network(n.ID)
}

func named(name string) swarm.NetworkSpec {
	return swarm.NetworkSpec{Annotations: swarm.Annotations{Name: name}}
}

func withSubnet(name, subnet string) swarm.NetworkSpec {
	s := named(name)
	s.IPAMOptions = &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: netip.MustParsePrefix(subnet)}}}
	return s
}

func subnetOf(n *state.Network) string {
	c := n.IPAMOptions.Configs[0]
	return c.Subnet.String() + " gw " + c.Gateway.String()
}

func TestIngressAndDefaultSubnets(t *testing.T) {
	ns := newNetStore(t)
	ops, done, err := ingressOps(ns.s.View())
	if err != nil || done || len(ops) != 2 {
		t.Fatalf("ingressOps on a cluster without ingress = %d ops, done %v, %v; want the network and the cluster", len(ops), done, err)
	}
	ns.apply(ops...)
	in := ingressNetwork(ns.s.View())
	if in == nil || in.Spec.Name != "ingress" || !in.Spec.Ingress || in.DriverState.Name != "overlay" ||
		in.Spec.Scope != "swarm" || subnetOf(in) != "10.0.0.0/24 gw 10.0.0.1" {
		t.Fatalf("ingress = %+v", in)
	}
	if _, done, _ := ingressOps(ns.s.View()); !done {
		t.Error("ingressOps wants to write again after the ingress was made")
	}

	web := ns.create(named("web"))
	if subnetOf(web) != "10.0.1.0/24 gw 10.0.1.1" || web.DriverState.Name != "overlay" || web.Spec.Scope != "swarm" {
		t.Errorf("web = %s, driver %q, scope %q; want 10.0.1.0/24, overlay, swarm", subnetOf(web), web.DriverState.Name, web.Spec.Scope)
	}
	ns.create(withSubnet("user", "10.0.2.0/23"))
	if got := subnetOf(ns.create(named("next"))); got != "10.0.4.0/24 gw 10.0.4.1" {
		t.Errorf("the next default subnet = %s, want 10.0.4.0/24 (10.0.2.0/23 is taken)", got)
	}
	gw := withSubnet("gw", "192.168.7.0/24")
	gw.IPAMOptions.Configs[0].Gateway = netip.MustParseAddr("192.168.7.254")
	if got := subnetOf(ns.create(gw)); got != "192.168.7.0/24 gw 192.168.7.254" {
		t.Errorf("a given gateway: %s", got)
	}

	// Removed by the user, the ingress is not made again by a new leader.
	ns.apply(state.NewOp(state.TableNetworks, state.ActionDelete, in, 0))
	if ops, done, _ := ingressOps(ns.s.View()); !done || len(ops) != 0 {
		t.Error("a removed ingress network would be made again")
	}
}

func TestIngressOpsWaitForInitAndKeepAUserIngress(t *testing.T) {
	if ops, done, err := ingressOps(state.NewStore().View()); ops != nil || done || err != nil {
		t.Errorf("before swarm init: %v ops, done %v, %v; want to wait", ops, done, err)
	}
	ns := newNetStore(t)
	ns.create(named("ingress")) // made through the API before the leader looked
	ops, _, err := ingressOps(ns.s.View())
	if err != nil || len(ops) != 1 || ops[0].Table != state.TableCluster {
		t.Errorf("with a network named ingress: %v, %v; want only the cluster's mark", ops, err)
	}
}

func TestNetworkSpecsRefused(t *testing.T) {
	ns := newNetStore(t)
	ops, _, _ := ingressOps(ns.s.View())
	ns.apply(ops...)
	taken := ns.create(withSubnet("taken", "172.20.0.0/16"))
	spec := func(f func(*swarm.NetworkSpec)) swarm.NetworkSpec {
		s := named("x")
		f(&s)
		return s
	}
	cases := []struct {
		name string
		spec swarm.NetworkSpec
		kind errdefs.Kind
		msg  string
	}{
		{"no name", named(""), errdefs.KindInvalid, "needs a name"},
		{"bad name", named("a b"), errdefs.KindInvalid, "invalid network name"},
		{"predefined", named("bridge"), errdefs.KindForbidden, "bridge is a pre-defined network"},
		{"bridge driver", spec(func(s *swarm.NetworkSpec) { s.DriverConfiguration = &swarm.Driver{Name: "bridge"} }),
			errdefs.KindInvalid, "only the overlay driver is supported in swarm scope"},
		{"macvlan driver", spec(func(s *swarm.NetworkSpec) { s.DriverConfiguration = &swarm.Driver{Name: "macvlan"} }),
			errdefs.KindInvalid, `network driver "macvlan" is not supported`},
		{"local scope", spec(func(s *swarm.NetworkSpec) { s.Scope = "local" }), errdefs.KindInvalid, "swarm scope"},
		{"ipv6", spec(func(s *swarm.NetworkSpec) { s.IPv6Enabled = true }), errdefs.KindInvalid, "IPv6"},
		{"duplicate name", named("taken"), errdefs.KindConflict, "network with name taken already exists (ID " + taken.ID},
		{"second ingress", spec(func(s *swarm.NetworkSpec) { s.Ingress = true }), errdefs.KindConflict, "ingress network (ingress"},
		{"attachable ingress", spec(func(s *swarm.NetworkSpec) { s.Ingress, s.Attachable = true, true }), errdefs.KindInvalid, "cannot be attachable"},
		{"overlap with ingress", withSubnet("x", "10.0.0.0/16"), errdefs.KindConflict, "overlaps with subnet 10.0.0.0/24"},
		{"driver option", func() swarm.NetworkSpec {
			s := named("x")
			s.DriverConfiguration = &swarm.Driver{Options: map[string]string{"com.docker.network.driver.mtu": "1400"}}
			return s
		}(), errdefs.KindInvalid, `network driver option "com.docker.network.driver.mtu" (-o) is not supported`},
		{"overlap with a user subnet", withSubnet("x", "172.20.5.0/24"), errdefs.KindConflict, "overlaps with subnet 172.20.0.0/16"},
		{"host bits", withSubnet("x", "10.9.0.1/24"), errdefs.KindInvalid, "use 10.9.0.0/24"},
		{"ipv6 subnet", withSubnet("x", "fd00::/64"), errdefs.KindInvalid, "IPv6 subnets"},
		{"too small", withSubnet("x", "10.9.0.0/31"), errdefs.KindInvalid, "too small"},
		{"gateway outside", spec(func(s *swarm.NetworkSpec) {
			*s = withSubnet("x", "10.9.0.0/24")
			s.IPAMOptions.Configs[0].Gateway = netip.MustParseAddr("10.8.0.1")
		}), errdefs.KindInvalid, "invalid gateway 10.8.0.1"},
		{"ipam driver", spec(func(s *swarm.NetworkSpec) { s.IPAMOptions = &swarm.IPAMOptions{Driver: swarm.Driver{Name: "dhcp"}} }),
			errdefs.KindInvalid, `IPAM driver "dhcp"`},
	}
	before := len(ns.s.Networks())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newNetwork(ns.s.View(), tc.spec)
			if err == nil || errdefs.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v (kind %v), want kind %v containing %q", err, errdefs.KindOf(err), tc.kind, tc.msg)
			}
		})
	}
	if len(ns.s.Networks()) != before {
		t.Error("a refused spec changed the networks")
	}
}

func TestNextSubnetPoolExhausted(t *testing.T) {
	if _, err := nextSubnet([]netip.Prefix{defaultPool}); err == nil || !strings.Contains(err.Error(), "--subnet") {
		t.Errorf("a full pool: %v; want an error suggesting --subnet", err)
	}
}

func TestNetworkInUse(t *testing.T) {
	ns := newNetStore(t)
	ops, _, _ := ingressOps(ns.s.View())
	ns.apply(ops...)
	ingress := ingressNetwork(ns.s.View())
	back := ns.create(named("back"))
	free := ns.create(named("free"))

	svc := func(id string, f func(*swarm.ServiceSpec)) *state.Service {
		s := &state.Service{}
		s.ID = id
		s.Spec.Name = id
		s.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "img"}
		f(&s.Spec)
		return s
	}
	ns.apply(
		state.NewOp(state.TableServices, state.ActionCreate, svc("byid", func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: back.ID}}
		}), 0),
		state.NewOp(state.TableServices, state.ActionCreate, svc("hostport", func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeHost}}}
		}), 0))
	v := ns.s.View()
	if err := networkInUse(v, back); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "network back is in use by service byid") {
		t.Errorf("a network a service names by ID: %v", err)
	}
	if err := networkInUse(v, free); err != nil {
		t.Errorf("a network nothing uses: %v", err)
	}
	if err := networkInUse(v, ingress); err != nil {
		t.Errorf("ingress with only host-mode ports: %v", err)
	}

	// By name too, and the ingress while a port goes through the mesh.
	ns.apply(state.NewOp(state.TableServices, state.ActionCreate, svc("web", func(s *swarm.ServiceSpec) {
		s.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "free"}}
		s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 80}}}
	}), 0))
	v = ns.s.View()
	if err := networkInUse(v, free); err == nil || !strings.Contains(err.Error(), "in use by service web") {
		t.Errorf("a network a service names by name: %v", err)
	}
	if err := networkInUse(v, ingress); !errdefs.Is(err, errdefs.KindInvalid) ||
		!strings.Contains(err.Error(), "ingress network cannot be removed because service web depends on it") {
		t.Errorf("ingress while a service publishes an ingress port: %v", err)
	}

	// A live task that still runs on a network holds it; an ended one not.
	other := ns.create(named("other"))
	task := &state.Task{}
	task.ID = "task1"
	task.ServiceID = "byid"
	task.Spec.Networks = []swarm.NetworkAttachmentConfig{{Target: other.ID}}
	task.Status.State = swarm.TaskStateRunning
	task.DesiredState = swarm.TaskStateRunning
	ns.apply(state.NewOp(state.TableTasks, state.ActionCreate, task, 0))
	if err := networkInUse(ns.s.View(), other); err == nil || !strings.Contains(err.Error(), "in use by task task1") {
		t.Errorf("a network a running task is on: %v", err)
	}
	// Being shut down (its service removed), as swarmkit: not held.
	task.DesiredState = swarm.TaskStateShutdown
	ns.apply(state.NewOp(state.TableTasks, state.ActionUpdate, task, 0))
	if err := networkInUse(ns.s.View(), other); err != nil {
		t.Errorf("a network only a task being shut down is on: %v", err)
	}
	task.Status.State = swarm.TaskStateShutdown
	ns.apply(state.NewOp(state.TableTasks, state.ActionUpdate, task, 0))
	if err := networkInUse(ns.s.View(), other); err != nil {
		t.Errorf("a network only an ended task was on: %v", err)
	}
}

func onNets(targets ...string) swarm.ServiceSpec {
	var spec swarm.ServiceSpec
	for _, t := range targets {
		spec.TaskTemplate.Networks = append(spec.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: t})
	}
	return spec
}

func TestAttachNetworks(t *testing.T) {
	ns := newNetStore(t)
	ops, _, _ := ingressOps(ns.s.View())
	ns.apply(ops...)
	web := ns.create(named("web"))
	db := ns.create(named("db"))
	v := ns.s.View()

	// A name, a full ID and a unique ID prefix all become the full ID.
	spec := onNets("web", db.ID[:5])
	spec.TaskTemplate.Networks[0].Aliases = []string{"front", "www.example"}
	if err := attachNetworks(v, &spec); err != nil {
		t.Fatal(err)
	}
	got := spec.TaskTemplate.Networks
	if len(got) != 2 || got[0].Target != web.ID || got[1].Target != db.ID || len(got[0].Aliases) != 2 {
		t.Fatalf("networks = %+v, want web (%s) with its aliases, then db (%s)", got, web.ID, db.ID)
	}
	if err := attachNetworks(v, &swarm.ServiceSpec{}); err != nil {
		t.Errorf("no network: %v", err)
	}

	for _, tc := range []struct {
		name string
		spec swarm.ServiceSpec
		kind errdefs.Kind
		msg  string
	}{
		{"Unknown", onNets("nosuch"), errdefs.KindNotFound, "network nosuch not found"},
		{"NoTarget", onNets(""), errdefs.KindInvalid, "a network attachment needs a Target"},
		{"Ingress", onNets("ingress"), errdefs.KindInvalid, `service cannot be explicitly attached to the ingress network "ingress"`},
		{"Twice", onNets("web", web.ID), errdefs.KindInvalid, "network web is given twice"},
		{"DriverOpts", func() swarm.ServiceSpec {
			s := onNets("web")
			s.TaskTemplate.Networks[0].DriverOpts = map[string]string{"com.docker.network.endpoint.ifname": "eth9"}
			return s
		}(), errdefs.KindInvalid, "driver options on the attachment to network web"},
		{"BadAlias", func() swarm.ServiceSpec {
			s := onNets("web")
			s.TaskTemplate.Networks[0].Aliases = []string{"not a name"}
			return s
		}(), errdefs.KindInvalid, `invalid alias "not a name" on network web`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := jsonString(t, tc.spec)
			err := attachNetworks(v, &tc.spec)
			if !errdefs.Is(err, tc.kind) || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want kind %v mentioning %q", err, tc.kind, tc.msg)
			}
			if after := jsonString(t, tc.spec); after != before {
				t.Errorf("a refused spec was changed: %s → %s", before, after)
			}
		})
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// storeService stores a service with the endpoint endpointFor gives it,
// as CreateService does.
func (ns *netStore) storeService(id string, spec swarm.ServiceSpec) *state.Service {
	ns.t.Helper()
	v := ns.s.View()
	if err := attachNetworks(v, &spec); err != nil {
		ns.t.Fatal(err)
	}
	ep, err := endpointFor(v, "", spec, nil)
	if err != nil {
		ns.t.Fatal(err)
	}
	s := &state.Service{}
	s.ID, s.Spec, s.Endpoint = id, spec, ep
	ns.apply(state.NewOp(state.TableServices, state.ActionCreate, s, 0))
	return ns.s.Service(id)
}

func vipsOf(ep swarm.Endpoint) map[string]string {
	out := map[string]string{}
	for _, v := range ep.VirtualIPs {
		out[v.NetworkID] = v.Addr.String()
	}
	return out
}

func TestVirtualIPs(t *testing.T) {
	ns := newNetStore(t)
	ops, _, _ := ingressOps(ns.s.View())
	ns.apply(ops...)
	in := ingressNetwork(ns.s.View())
	web := ns.create(named("web")) // 10.0.1.0/24
	db := ns.create(named("db"))   // 10.0.2.0/24
	a := ns.storeService("a", onNets("web", "db"))
	if got := vipsOf(a.Endpoint); len(got) != 2 || got[web.ID] != "10.0.1.2/24" || got[db.ID] != "10.0.2.2/24" {
		t.Fatalf("VIPs of a = %v: want 10.0.1.2/24 on web and 10.0.2.2/24 on db", got)
	}
	// Another service on web gets the next address; one publishing a
	// port through the mesh also gets one on ingress, as in Docker.
	pub := onNets("web")
	pub.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080}}}
	if err := validatePorts(&pub); err != nil {
		t.Fatal(err)
	}
	b := ns.storeService("b", pub)
	if got := vipsOf(b.Endpoint); len(got) != 2 || got[web.ID] != "10.0.1.3/24" || got[in.ID] != "10.0.0.2/24" {
		t.Fatalf("VIPs of b = %v: want 10.0.1.3/24 on web and 10.0.0.2/24 on ingress", got)
	}
	if b.Endpoint.VirtualIPs[0].NetworkID != in.ID {
		t.Errorf("the ingress VIP is not first, as in Docker: %+v", b.Endpoint.VirtualIPs)
	}

	// An update that keeps web keeps its VIP, even in another order; db
	// left is released (a new service may take it); a network added gets one.
	ns.create(named("extra")) // 10.0.3.0/24
	upd := onNets("extra", "web")
	if err := attachNetworks(ns.s.View(), &upd); err != nil {
		t.Fatal(err)
	}
	ep, err := endpointFor(ns.s.View(), "a", upd, &a.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if got := vipsOf(ep); len(got) != 2 || got[web.ID] != "10.0.1.2/24" || got[db.ID] != "" || !strings.HasPrefix(got[upd.TaskTemplate.Networks[0].Target], "10.0.3.") {
		t.Fatalf("VIPs after the update = %v: want web's kept, db's gone, one on extra", got)
	}
	u := a.Copy()
	u.Spec, u.Endpoint = upd, ep
	ns.apply(state.NewOp(state.TableServices, state.ActionUpdate, u, 0))
	if got := vipsOf(ns.storeService("c", onNets("db")).Endpoint); got[db.ID] != "10.0.2.2/24" {
		t.Errorf("db's released VIP is not free again: c got %v", got)
	}

	// dnsrr: no VIPs; back to vip: new ones.
	rr := onNets("web")
	rr.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	if err := attachNetworks(ns.s.View(), &rr); err != nil {
		t.Fatal(err)
	}
	if ep, err := endpointFor(ns.s.View(), "a", rr, &u.Endpoint); err != nil || len(ep.VirtualIPs) != 0 {
		t.Errorf("dnsrr: VIPs %v, err %v; want none", ep.VirtualIPs, err)
	}
	if d := ns.storeService("d", rr); len(d.Endpoint.VirtualIPs) != 0 {
		t.Errorf("a dnsrr service got VIPs: %v", d.Endpoint.VirtualIPs)
	}
}

func TestVirtualIPsExhausted(t *testing.T) {
	ns := newNetStore(t)
	tiny := ns.create(withSubnet("tiny", "10.9.9.0/29")) // .2 to .6
	seen := map[string]bool{}
	for i := range 5 {
		s := ns.storeService(fmt.Sprintf("s%d", i), onNets("tiny"))
		addr := vipsOf(s.Endpoint)[tiny.ID]
		if addr == "" || seen[addr] {
			t.Fatalf("service %d: VIP %q (duplicate or missing)", i, addr)
		}
		seen[addr] = true
	}
	spec := onNets("tiny")
	if err := attachNetworks(ns.s.View(), &spec); err != nil {
		t.Fatal(err)
	}
	_, err := endpointFor(ns.s.View(), "", spec, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot give the service a virtual IP: no free address on network tiny (10.9.9.0/29)") {
		t.Fatalf("sixth service: err = %v, want the exhaustion error", err)
	}
}

// The store keeps networks through a snapshot and its restore.
func TestNetworksSurviveSnapshot(t *testing.T) {
	ns := newNetStore(t)
	ops, _, _ := ingressOps(ns.s.View())
	ns.apply(ops...)
	web := ns.create(withSubnet("web", "10.5.0.0/16"))
	var buf strings.Builder
	if err := ns.s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r := state.NewStore()
	if err := r.Restore(strings.NewReader(buf.String())); err != nil {
		t.Fatal(err)
	}
	got := r.Network(web.ID)
	if got == nil || subnetOf(got) != "10.5.0.0/16 gw 10.5.0.1" || got.Version.Index != web.Version.Index {
		t.Fatalf("restored web = %+v", got)
	}
	if ingressNetwork(r.View()) == nil || !r.Cluster().IngressMade {
		t.Error("the ingress network or the cluster's mark did not survive")
	}
	// A restored store still refuses an overlapping subnet.
	if _, err := newNetwork(r.View(), withSubnet("x", "10.5.1.0/24")); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("overlap after restore: %v", err)
	}
}

// A subnet holding a node's address would take that node's own traffic
// into the mesh: the default pool skips it, and asking for it is refused.
func TestNetworkSubnetAvoidsNodeAddresses(t *testing.T) {
	ns := newNetStore(t)
	n := &state.Node{}
	n.ID = "node1"
	n.Addr = "10.0.1.7:2377"
	n.Status.Addr = "10.0.3.9"
	ns.apply(state.NewOp(state.TableNodes, state.ActionCreate, n, 0))
	ns.create(swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "ingress"}, Ingress: true, DriverConfiguration: &swarm.Driver{Name: "overlay"},
		IPAMOptions: &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.0.0/24")}}}})
	a := ns.create(named("a"))
	b := ns.create(named("b"))
	if got := subnetOf(a) + ", " + subnetOf(b); got != "10.0.2.0/24 gw 10.0.2.1, 10.0.4.0/24 gw 10.0.4.1" {
		t.Errorf("default subnets next to nodes at 10.0.1.7 and 10.0.3.9: %s", got)
	}
	_, err := newNetwork(ns.s.View(), withSubnet("c", "10.0.1.0/24"))
	if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "10.0.1.7, the address of a node") {
		t.Errorf("a subnet holding a node's address: %v", err)
	}
}

// "encrypted" asks for what flotilla always does, so it is accepted.
func TestNetworkEncryptedOptionAccepted(t *testing.T) {
	ns := newNetStore(t)
	s := named("secure")
	s.DriverConfiguration = &swarm.Driver{Options: map[string]string{"encrypted": ""}}
	if n := ns.create(s); n.DriverState.Options["encrypted"] != "" {
		t.Errorf("driver state %+v", n.DriverState)
	}
}
