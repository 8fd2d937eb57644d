package mesh

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// captureStandIn accepts connections as the capture listener would and
// hands each to the mesh as if its client had meant dst.
func captureStandIn(t *testing.T, m *Mesh, dst netip.AddrPort, allowed func(netip.Addr, string) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.ServeCaptured(c, dst, allowed)
		}
	}()
	return ln.Addr().String()
}

func TestCapturedVIPAndTaskAddresses(t *testing.T) {
	a, b := newTestNode(t, "A"), newTestNode(t, "B")
	a.tasks["t1"] = startTask(t, "t1", "")
	b.tasks["t2"] = startTask(t, "t2", "")
	vip, addr1, addr2 := netip.MustParseAddr("10.0.1.2"), netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.0.1.6")
	r := nodeapi.Route{ServiceID: "svc", ServiceName: "back", Mode: "vip",
		VIPs: []nodeapi.NetAddr{{Network: "net1", Addr: vip}},
		Backends: []nodeapi.Backend{
			{TaskID: "t1", NodeID: "A", NodeAddr: a.relay.Addr().String(), Addrs: []nodeapi.NetAddr{{Network: "net1", Addr: addr1}}},
			{TaskID: "t2", NodeID: "B", NodeAddr: b.relay.Addr().String(), Addrs: []nodeapi.NetAddr{{Network: "net1", Addr: addr2}}},
		}}
	a.mesh.Update([]nodeapi.Route{r})
	onNet1 := func(_ netip.Addr, network string) bool { return network == "net1" }

	askVia := func(addr string) (string, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return "", err
		}
		defer c.Close()
		name, err := readName(c)
		return name, err
	}
	viaVIP := captureStandIn(t, a.mesh, netip.AddrPortFrom(vip, 5432), onNet1)
	seen := map[string]int{}
	for range 6 {
		name, err := askVia(viaVIP)
		if err != nil {
			t.Fatalf("through the VIP: %v", err)
		}
		seen[name]++
	}
	if seen["t1"] == 0 || seen["t2"] == 0 {
		t.Errorf("VIP connections went to %v; want both tasks", seen)
	}
	for _, want := range []struct {
		addr netip.Addr
		task string
	}{{addr1, "t1"}, {addr2, "t2"}} {
		via := captureStandIn(t, a.mesh, netip.AddrPortFrom(want.addr, 80), onNet1)
		for range 3 {
			if name, err := askVia(via); err != nil || name != want.task {
				t.Fatalf("task address %s: got %q, %v; want %s", want.addr, name, err, want.task)
			}
		}
	}

	// Refused: an address nothing holds, and a network the client is not on.
	for _, via := range []string{
		captureStandIn(t, a.mesh, netip.MustParseAddrPort("10.0.1.99:80"), onNet1),
		captureStandIn(t, a.mesh, netip.AddrPortFrom(vip, 80), func(netip.Addr, string) bool { return false }),
	} {
		if name, err := askVia(via); err == nil {
			t.Errorf("refused destination answered %q", name)
		}
	}

	// The task leaves the table: its address stops answering.
	r.Backends = r.Backends[:1]
	a.mesh.Update([]nodeapi.Route{r})
	if name, err := askVia(captureStandIn(t, a.mesh, netip.AddrPortFrom(addr2, 80), onNet1)); err == nil {
		t.Errorf("address of a task out of the table answered %q", name)
	}
}

// readName reads the first line a test task sends: its name.
func readName(c net.Conn) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
