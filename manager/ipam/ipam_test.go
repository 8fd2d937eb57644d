package ipam

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

func network(id, subnet string) *state.Network {
	p := netip.MustParsePrefix(subnet)
	n := &state.Network{}
	n.ID = id
	n.Spec.Name = "net-" + id
	n.IPAMOptions = &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: p, Gateway: p.Addr().Next()}}}
	return n
}

func TestAllocateSkipsReservedAndUsed(t *testing.T) {
	a := New([]*state.Network{network("n1", "10.0.1.0/24")})
	s := &state.Service{}
	s.Endpoint.VirtualIPs = []swarm.EndpointVirtualIP{{NetworkID: "n1", Addr: netip.MustParsePrefix("10.0.1.2/24")}}
	a.UseService(s)
	live := &state.Task{}
	live.Status.State = swarm.TaskStateRunning
	live.NetworksAttachments = []swarm.NetworkAttachment{{Network: swarm.Network{ID: "n1"}, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.3/24")}}}
	a.UseTask(live)
	ended := &state.Task{}
	ended.Status.State = swarm.TaskStateFailed
	ended.NetworksAttachments = []swarm.NetworkAttachment{{Network: swarm.Network{ID: "n1"}, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.4/24")}}}
	a.UseTask(ended)
	var got []string
	for range 3 {
		p, err := a.Allocate("n1")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.String())
	}
	if want := "10.0.1.4/24 10.0.1.5/24 10.0.1.6/24"; strings.Join(got, " ") != want {
		t.Fatalf("allocated %v, want %s (.0, .1, the service's .2 and the live task's .3 skipped; the ended task's .4 free)", got, want)
	}
}

func TestAllocateExhaustsSmallSubnet(t *testing.T) {
	a := New([]*state.Network{network("n1", "10.9.9.0/29")})
	seen := map[netip.Prefix]bool{}
	for range 5 { // .2 to .6: .0 network, .1 gateway, .7 broadcast
		p, err := a.Allocate("n1")
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || p.Addr() == netip.MustParseAddr("10.9.9.7") {
			t.Fatalf("allocated %s twice or the broadcast address", p)
		}
		seen[p] = true
	}
	_, err := a.Allocate("n1")
	if err == nil || !strings.Contains(err.Error(), "no free address on network net-n1 (10.9.9.0/29)") {
		t.Fatalf("sixth address: err = %v, want the exhaustion error", err)
	}
	if _, err := a.Allocate("nope"); err == nil || !strings.Contains(err.Error(), "network nope not found") {
		t.Fatalf("unknown network: err = %v", err)
	}
}

func TestAllocateWithinRange(t *testing.T) {
	n := network("n1", "10.1.0.0/16")
	n.IPAMOptions.Configs[0].Range = netip.MustParsePrefix("10.1.5.0/30")
	a := New([]*state.Network{n})
	var got []string
	for {
		p, err := a.Allocate("n1")
		if err != nil {
			break
		}
		got = append(got, p.String())
	}
	if want := "10.1.5.0/16 10.1.5.1/16 10.1.5.2/16 10.1.5.3/16"; strings.Join(got, " ") != want {
		t.Fatalf("allocated %v, want %s", got, want)
	}
}
