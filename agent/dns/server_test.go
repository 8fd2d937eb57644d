package dns

import (
	"net/netip"
	"slices"
	"testing"

	mdns "github.com/miekg/dns"
)

func start(t *testing.T, upstream []string) *Server {
	t.Helper()
	s := New(upstream)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func query(t *testing.T, server, name string, qtype uint16, network string) *mdns.Msg {
	t.Helper()
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(name), qtype)
	c := &mdns.Client{Net: network}
	reply, _, err := c.Exchange(q, server)
	if err != nil {
		t.Fatalf("query %s over %s: %v", name, network, err)
	}
	return reply
}

func addrsOf(m *mdns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch a := rr.(type) {
		case *mdns.A:
			out = append(out, a.A.String())
		case *mdns.AAAA:
			out = append(out, a.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestAnswersServiceNamesOverUDPAndTCP(t *testing.T) {
	s := start(t, nil)
	s.SetRecords(map[string][]netip.Addr{
		"back":       {netip.MustParseAddr("10.0.1.2")},
		"tasks.back": {netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.1.11")},
	})
	for _, network := range []string{"udp", "tcp"} {
		if got := addrsOf(query(t, s.Addr(), "back", mdns.TypeA, network)); !slices.Equal(got, []string{"10.0.1.2"}) {
			t.Errorf("%s: back = %v, want its virtual address", network, got)
		}
		if got := addrsOf(query(t, s.Addr(), "TASKS.Back", mdns.TypeA, network)); !slices.Equal(got, []string{"10.0.1.10", "10.0.1.11"}) {
			t.Errorf("%s: tasks.back = %v, want both tasks (names are case-insensitive)", network, got)
		}
	}
	// A known name without IPv6 answers empty, not "no such name".
	if r := query(t, s.Addr(), "back", mdns.TypeAAAA, "udp"); r.Rcode != mdns.RcodeSuccess || len(r.Answer) != 0 {
		t.Errorf("AAAA back: rcode %d, %d answers; want NOERROR and none", r.Rcode, len(r.Answer))
	}
	// Without resolvers, an unknown name does not exist.
	if r := query(t, s.Addr(), "front", mdns.TypeA, "udp"); r.Rcode != mdns.RcodeNameError {
		t.Errorf("unknown name: rcode %d, want NXDOMAIN", r.Rcode)
	}
	// Records follow the table.
	s.SetRecords(map[string][]netip.Addr{"front": {netip.MustParseAddr("10.0.1.3")}})
	if r := query(t, s.Addr(), "back", mdns.TypeA, "udp"); r.Rcode != mdns.RcodeNameError {
		t.Errorf("a removed service still resolves: rcode %d, %v", r.Rcode, addrsOf(r))
	}
}

func TestForwardsOtherNamesAndSaysWhenUpstreamFails(t *testing.T) {
	up := start(t, nil)
	up.SetRecords(map[string][]netip.Addr{"example.org": {netip.MustParseAddr("192.0.2.7")}})
	s := start(t, []string{up.Addr()})
	s.SetRecords(map[string][]netip.Addr{"back": {netip.MustParseAddr("10.0.1.2")}})
	if got := addrsOf(query(t, s.Addr(), "example.org", mdns.TypeA, "udp")); !slices.Equal(got, []string{"192.0.2.7"}) {
		t.Errorf("forwarded example.org = %v, want the upstream's answer", got)
	}
	up.Close()
	if r := query(t, s.Addr(), "example.org", mdns.TypeA, "udp"); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("with the upstream gone: rcode %d, want SERVFAIL", r.Rcode)
	}
	if got := addrsOf(query(t, s.Addr(), "back", mdns.TypeA, "udp")); len(got) != 1 {
		t.Errorf("service names must still answer with the upstream gone: %v", got)
	}
}

func TestUpstreamFromResolvConf(t *testing.T) {
	conf := []byte("# a comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.org\nnameserver 2001:db8::1\nnameserver bogus\n")
	if got := Upstream(conf, true); !slices.Equal(got, []string{"192.0.2.1:53", "[2001:db8::1]:53"}) {
		t.Errorf("Upstream(skip loopback) = %v", got)
	}
	if got := Upstream(conf, false); len(got) != 3 {
		t.Errorf("Upstream = %v, want 3 resolvers", got)
	}
}
