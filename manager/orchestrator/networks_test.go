package orchestrator

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// addNetwork stores a network of that ID and subnet.
func (h *harness) addNetwork(id, subnet string) {
	h.t.Helper()
	p := netip.MustParsePrefix(subnet)
	n := &state.Network{}
	n.ID = id
	n.Spec.Name = id
	n.IPAMOptions = &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: p, Gateway: p.Addr().Next()}}}
	h.mustApply(state.NewOp(state.TableNetworks, state.ActionCreate, n, 0))
}

func onNetworks(ids ...string) specOpt {
	return func(s *swarm.ServiceSpec) {
		for _, id := range ids {
			s.TaskTemplate.Networks = append(s.TaskTemplate.Networks, swarm.NetworkAttachmentConfig{Target: id})
		}
	}
}

// addresses are the addresses of the service's live tasks, by network,
// failing the test on a duplicate.
func (h *harness) addresses(svcs ...string) map[string][]netip.Prefix {
	h.t.Helper()
	out := map[string][]netip.Prefix{}
	seen := map[netip.Addr]string{}
	for _, svc := range svcs {
		for _, tk := range h.tasks(svc) {
			if Terminal(tk.Status.State) {
				continue
			}
			for _, a := range tk.NetworksAttachments {
				if a.Network.Spec.Name != "" {
					h.t.Errorf("task %s stores the whole network %s; the state keeps its ID only", tk.ID, a.Network.ID)
				}
				for _, p := range a.Addresses {
					if other, ok := seen[p.Addr()]; ok {
						h.t.Fatalf("tasks %s and %s share the address %s\n%s", other, tk.ID, p, h.dumpAll())
					}
					seen[p.Addr()] = tk.ID
					out[a.Network.ID] = append(out[a.Network.ID], p)
				}
			}
		}
	}
	return out
}

func TestTasksOfOnePassGetDistinctAddresses(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	h.addNetwork("front", "10.0.1.0/24")
	h.addNetwork("back", "10.0.2.0/24")
	a := h.create(replicatedSpec("a", 4, onNetworks("front", "back")))
	b := h.create(replicatedSpec("b", 3, onNetworks("front")))
	plain := h.create(replicatedSpec("plain", 2))
	h.pass() // one pass makes every task of both services
	got := h.addresses(a, b)
	if len(got["front"]) != 7 || len(got["back"]) != 4 {
		t.Fatalf("addresses by network: %v, want 7 on front and 4 on back", got)
	}
	for _, p := range got["front"] {
		if !netip.MustParsePrefix("10.0.1.0/24").Contains(p.Addr()) || p.Bits() != 24 || p.Addr() == netip.MustParseAddr("10.0.1.1") {
			t.Errorf("address %s: want a host address of 10.0.1.0/24 other than the gateway, with /24", p)
		}
	}
	for _, tk := range h.tasks(plain) {
		if len(tk.NetworksAttachments) != 0 {
			t.Errorf("a task of a service on no network has attachments: %+v", tk.NetworksAttachments)
		}
	}
	h.converge()
	h.expectReplicas(a, 4)

	// A replacement task reuses no live task's address.
	h.exit(h.running(a)[0].ID, swarm.TaskStateFailed)
	h.runFor(defaultRestartDelay*2, defaultRestartDelay/4)
	h.expectReplicas(a, 4)
	h.addresses(a, b)
}

func TestSmallSubnetExhaustedNoDuplicate(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	h.addNetwork("tiny", "10.9.9.0/29") // .2 to .6: five addresses
	svc := h.create(replicatedSpec("web", 7, onNetworks("tiny")))
	h.converge()
	got := h.addresses(svc)["tiny"]
	if len(got) != 5 || len(h.desired(svc)) != 5 {
		t.Fatalf("%d addresses, %d tasks: want 5 of each (the subnet's free addresses)\n%s", len(got), len(h.desired(svc)), h.dump(svc))
	}
	if msg := h.o.addrWarned[svc]; !strings.Contains(msg, "no free address on network tiny (10.9.9.0/29)") {
		t.Fatalf("the failure is not reported: %q", msg)
	}
	// Scaling down frees addresses; the failure clears.
	h.scale(svc, 4)
	h.converge()
	h.expectReplicas(svc, 4)
	if _, ok := h.o.addrWarned[svc]; ok {
		t.Fatalf("the failure is still reported after scaling down")
	}
	// Freed addresses are taken again by new tasks.
	h.scale(svc, 5)
	h.converge()
	h.expectReplicas(svc, 5)
	h.addresses(svc)
}

// sneakyLock is the API's write lock, taken by a service create that
// got in between a pass's view and its proposal: it stores a service
// with a VIP the first time it is locked.
type sneakyLock struct {
	h    *harness
	done bool
}

func (l *sneakyLock) Lock() {
	if l.done {
		return
	}
	l.done = true
	s := &state.Service{SpecVersion: 1}
	s.ID = "api"
	s.Spec = replicatedSpec("api", 0)
	s.Endpoint.VirtualIPs = []swarm.EndpointVirtualIP{{NetworkID: "front", Addr: netip.MustParsePrefix("10.0.1.2/24")}}
	l.h.mustApply(state.NewOp(state.TableServices, state.ActionCreate, s, 0))
}

func (l *sneakyLock) Unlock() {}

// A VIP given by the API while a pass was deciding is never also given
// to one of the pass's tasks: the pass proposes under the API's lock and
// starts again when a VIP appeared.
func TestPassYieldsToVIPsGivenMeanwhile(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1")
	h.addNetwork("front", "10.0.1.0/24")
	h.o.SetAddressLock(&sneakyLock{h: h})
	svc := h.create(replicatedSpec("web", 2, onNetworks("front")))
	h.converge()
	h.expectReplicas(svc, 2)
	for _, p := range h.addresses(svc)["front"] {
		if p.Addr() == netip.MustParseAddr("10.0.1.2") {
			t.Fatalf("a task got 10.0.1.2, the VIP the API gave meanwhile\n%s", h.dump(svc))
		}
	}
}
