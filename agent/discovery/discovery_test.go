package discovery

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

var (
	vipBack = netip.MustParseAddr("10.0.1.2")
	t1, t2  = netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.0.1.6")
	t3      = netip.MustParseAddr("10.0.2.7")
)

func table() nodeapi.RoutesResponse {
	return nodeapi.RoutesResponse{
		Networks: []nodeapi.RouteNetwork{{ID: "net1", Name: "appnet", Subnet: netip.MustParsePrefix("10.0.1.0/24")},
			{ID: "net2", Name: "other", Subnet: netip.MustParsePrefix("10.0.2.0/24")}},
		Services: []nodeapi.Route{
			{ServiceName: "back", Mode: "vip", VIPs: []nodeapi.NetAddr{{Network: "net1", Addr: vipBack}},
				Aliases: []nodeapi.NetAlias{{Network: "net1", Name: "db"}},
				Backends: []nodeapi.Backend{{TaskID: "a", Addrs: []nodeapi.NetAddr{{Network: "net1", Addr: t1}}},
					{TaskID: "b", Addrs: []nodeapi.NetAddr{{Network: "net1", Addr: t2}}}}},
			{ServiceName: "rr", Mode: "dnsrr",
				Backends: []nodeapi.Backend{{TaskID: "c", Addrs: []nodeapi.NetAddr{{Network: "net2", Addr: t3}}}}},
		},
	}
}

func TestRecordsByNetwork(t *testing.T) {
	r := recordsByNetwork(table().Services)
	want := map[string]map[string][]netip.Addr{
		"net1": {"back": {vipBack}, "db": {vipBack}, "tasks.back": {t1, t2}, "tasks.db": {t1, t2}},
		"net2": {"rr": {t3}, "tasks.rr": {t3}},
	}
	for network, names := range want {
		for name, addrs := range names {
			got := slices.Clone(r[network][name])
			slices.SortFunc(got, netip.Addr.Compare)
			if !slices.Equal(got, addrs) {
				t.Errorf("%s on %s = %v, want %v", name, network, got, addrs)
			}
		}
		if len(r[network]) != len(names) {
			t.Errorf("%s names %v, want %v", network, r[network], names)
		}
	}
}

// query asks server for name's A records; ok false on NXDOMAIN.
func query(t *testing.T, server, name string) ([]netip.Addr, bool) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	c := &mdns.Client{Timeout: 2 * time.Second}
	in, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s at %s: %v", name, server, err)
	}
	if in.Rcode == mdns.RcodeNameError {
		return nil, false
	}
	var out []netip.Addr
	for _, rr := range in.Answer {
		if a, ok := rr.(*mdns.A); ok {
			ip, _ := netip.AddrFromSlice(a.A.To4())
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, true
}

// A task's DNS server answers the names of its networks only, and follows
// the table.
func TestTaskDNSAnswersItsNetworks(t *testing.T) {
	d := New(Config{Log: slog.New(slog.DiscardHandler)})
	t.Cleanup(d.Close)
	d.Update(table())
	nets := []driver.NetworkAttachment{{ID: "net1", Name: "appnet", Addr: netip.MustParsePrefix("10.0.1.9/24")}}
	addr, err := d.AttachTask("task1", nets)
	if err != nil {
		t.Fatal(err)
	}
	if ap := netip.MustParseAddrPort(addr); ap.Addr() != netip.MustParseAddr("127.0.1.9") {
		t.Fatalf("task DNS at %s, want the task's loopback address 127.0.1.9", addr)
	}
	if got, ok := query(t, addr, "back"); !ok || !slices.Equal(got, []netip.Addr{vipBack}) {
		t.Errorf("back = %v %v, want the VIP", got, ok)
	}
	if got, ok := query(t, addr, "tasks.back"); !ok || !slices.Equal(got, []netip.Addr{t1, t2}) {
		t.Errorf("tasks.back = %v %v", got, ok)
	}
	if got, ok := query(t, addr, "rr"); ok {
		t.Errorf("rr (another network) resolved to %v", got)
	}
	// The back end loses a task: the next answer follows.
	tb := table()
	tb.Services[0].Backends = tb.Services[0].Backends[:1]
	d.Update(tb)
	if got, _ := query(t, addr, "tasks.back"); !slices.Equal(got, []netip.Addr{t1}) {
		t.Errorf("after a task left, tasks.back = %v", got)
	}
	// Attaching again keeps the server; detaching stops it.
	if again, err := d.AttachTask("task1", nets); err != nil || again != addr {
		t.Errorf("second attach: %s %v, want %s", again, err, addr)
	}
	d.DetachTask("task1")
	m := new(mdns.Msg)
	m.SetQuestion("back.", mdns.TypeA)
	if _, _, err := (&mdns.Client{Timeout: 300 * time.Millisecond}).Exchange(m, addr); err == nil {
		t.Error("the DNS server of a detached task still answers")
	}
}
