package discovery

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer answers A, AAAA and SRV questions from its tables on
// 127.0.0.1 over UDP; names it does not know get NXDOMAIN.
type dnsServer struct {
	a    map[string][]net.IP
	srv  map[string][]dnsmessage.SRVResource
	conn net.PacketConn
}

func startDNS(t *testing.T, s *dnsServer) *net.Resolver {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.conn = c
	t.Cleanup(func() { c.Close() })
	go s.serve()
	addr := c.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		out, err := s.answer(h, q)
		if err == nil {
			_, _ = s.conn.WriteTo(out, from)
		}
	}
}

func (s *dnsServer) answer(h dnsmessage.Header, q dnsmessage.Question) ([]byte, error) {
	name := strings.ToLower(q.Name.String())
	_, known := s.a[name]
	_, knownSRV := s.srv[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true}
	if !known && !knownSRV {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 5}
	for _, ip := range s.a[name] {
		switch {
		case q.Type == dnsmessage.TypeA && ip.To4() != nil:
			var a dnsmessage.AResource
			copy(a.A[:], ip.To4())
			if err := b.AResource(rr, a); err != nil {
				return nil, err
			}
		case q.Type == dnsmessage.TypeAAAA && ip.To4() == nil:
			var a dnsmessage.AAAAResource
			copy(a.AAAA[:], ip.To16())
			if err := b.AAAAResource(rr, a); err != nil {
				return nil, err
			}
		}
	}
	if q.Type == dnsmessage.TypeSRV {
		for _, r := range s.srv[name] {
			if err := b.SRVResource(rr, r); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

func TestDNSAddressRecords(t *testing.T) {
	r := startDNS(t, &dnsServer{a: map[string][]net.IP{
		"managers.test.": {net.ParseIP("127.0.0.11"), net.ParseIP("127.0.0.12"), net.ParseIP("::1")},
	}})
	for spec, want := range map[string][]string{
		"managers.test":      {"127.0.0.11:2377", "127.0.0.12:2377", "[::1]:2377"},
		"managers.test:4000": {"127.0.0.11:4000", "127.0.0.12:4000", "[::1]:4000"},
	} {
		p, err := newDNS(spec, r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Managers(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", spec, got, want)
		}
	}
	p, _ := newDNS("nobody.test", r)
	if _, err := p.Managers(context.Background()); err == nil || !strings.Contains(err.Error(), "dns nobody.test:2377") {
		t.Errorf("unknown name: err = %v, want one naming the provider", err)
	}
}

func TestDNSSRVRecords(t *testing.T) {
	target := func(s string) dnsmessage.Name { return dnsmessage.MustNewName(s) }
	r := startDNS(t, &dnsServer{srv: map[string][]dnsmessage.SRVResource{
		"_flotilla._tcp.test.": {
			{Priority: 10, Weight: 1, Port: 4001, Target: target("m1.test.")},
			{Priority: 5, Weight: 1, Port: 4002, Target: target("m2.test.")},
		},
	}})
	p, err := newSRV("_flotilla._tcp.test", r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Managers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Lower priority first, as SRV clients must try them.
	if want := []string{"m2.test:4002", "m1.test:4001"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if p.String() != "dns srv _flotilla._tcp.test" {
		t.Errorf("String() = %q", p.String())
	}
	p2, _ := newSRV("_none._tcp.test", r)
	if _, err := p2.Managers(context.Background()); err == nil {
		t.Error("a name with no SRV records gave no error")
	}
}
