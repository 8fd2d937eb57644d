// Package dns is a node's DNS server for service discovery: it answers
// the names of the services on a network (NAME → its virtual address, or
// its tasks' addresses with dnsrr; tasks.NAME → the tasks' addresses), as
// Docker's embedded DNS does, and forwards every other name to the node's
// own resolvers. One server listens per network's address on the node,
// with that network's names only, so a task resolves just the services it
// shares a network with.
package dns

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
)

// TTL of the answers: short, since tasks come and go (Docker uses 600 s
// and is known for stale answers).
const TTL = 5

// forwardTimeout bounds a query to an upstream resolver.
const forwardTimeout = 2 * time.Second

// Server answers one network's names on one address, UDP and TCP.
type Server struct {
	upstream []string // host:port
	// ForClient, when set, gives the names a client answers from (a
	// task on several networks); nil falls back to SetRecords'.
	ForClient func(client netip.Addr) map[string][]netip.Addr

	mu      sync.RWMutex
	records map[string][]netip.Addr // lower-case name without the final dot

	udp, tcp *mdns.Server
}

// New returns a server that forwards unknown names to upstream (host:port
// of resolvers; none: unknown names are NXDOMAIN).
func New(upstream []string) *Server {
	return &Server{upstream: upstream, records: map[string][]netip.Addr{}}
}

// SetRecords replaces the names the server answers.
func (s *Server) SetRecords(records map[string][]netip.Addr) {
	m := make(map[string][]netip.Addr, len(records))
	for name, addrs := range records {
		m[strings.ToLower(strings.TrimSuffix(name, "."))] = append([]netip.Addr(nil), addrs...)
	}
	s.mu.Lock()
	s.records = m
	s.mu.Unlock()
}

// Listen starts answering on addr (host:port) over UDP and TCP. It returns
// once both listen.
func (s *Server) Listen(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return err
	}
	s.udp = &mdns.Server{PacketConn: pc, Handler: s}
	s.tcp = &mdns.Server{Listener: ln, Handler: s}
	for _, srv := range []*mdns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	return nil
}

// Addr is the UDP address the server answers on.
func (s *Server) Addr() string { return s.udp.PacketConn.LocalAddr().String() }

// Close stops the server.
func (s *Server) Close() error {
	var errs []error
	for _, srv := range []*mdns.Server{s.udp, s.tcp} {
		if srv != nil {
			errs = append(errs, srv.Shutdown())
		}
	}
	return errors.Join(errs...)
}

// lookup returns a name's addresses, in a new random order each time
// (round robin for dnsrr and tasks.NAME), and whether the name is ours.
func (s *Server) lookup(client netip.Addr, name string) ([]netip.Addr, bool) {
	key := strings.ToLower(strings.TrimSuffix(name, "."))
	var addrs []netip.Addr
	var ok bool
	if records := s.clientRecords(client); records != nil {
		addrs, ok = records[key]
	} else {
		s.mu.RLock()
		addrs, ok = s.records[key]
		s.mu.RUnlock()
	}
	if !ok {
		return nil, false
	}
	out := append([]netip.Addr(nil), addrs...)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, true
}

// ServeDNS implements mdns.Handler.
func (s *Server) ServeDNS(w mdns.ResponseWriter, q *mdns.Msg) {
	if len(q.Question) != 1 {
		reply := new(mdns.Msg)
		reply.SetRcode(q, mdns.RcodeFormatError)
		_ = w.WriteMsg(reply)
		return
	}
	question := q.Question[0]
	addrs, ours := s.lookup(clientAddr(w.RemoteAddr()), question.Name)
	if !ours {
		s.forward(w, q)
		return
	}
	reply := new(mdns.Msg)
	reply.SetReply(q)
	reply.Authoritative = true
	for _, a := range addrs {
		hdr := mdns.RR_Header{Name: question.Name, Class: mdns.ClassINET, Ttl: TTL}
		switch {
		case question.Qtype == mdns.TypeA && a.Is4():
			hdr.Rrtype = mdns.TypeA
			reply.Answer = append(reply.Answer, &mdns.A{Hdr: hdr, A: a.AsSlice()})
		case question.Qtype == mdns.TypeAAAA && a.Is6():
			hdr.Rrtype = mdns.TypeAAAA
			reply.Answer = append(reply.Answer, &mdns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	// A known name with no address of the asked type is an empty answer
	// (NOERROR), not NXDOMAIN: the name exists.
	_ = w.WriteMsg(reply)
}

// forward passes a query for a name that is not ours to the node's
// resolvers, trying each in turn.
func (s *Server) forward(w mdns.ResponseWriter, q *mdns.Msg) {
	network := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	c := &mdns.Client{Net: network, Timeout: forwardTimeout}
	for _, up := range s.upstream {
		reply, _, err := c.Exchange(q, up)
		if err == nil && reply != nil {
			_ = w.WriteMsg(reply)
			return
		}
	}
	reply := new(mdns.Msg)
	if len(s.upstream) == 0 {
		reply.SetRcode(q, mdns.RcodeNameError)
	} else {
		reply.SetRcode(q, mdns.RcodeServerFailure)
	}
	_ = w.WriteMsg(reply)
}

// Upstream reads the resolvers of a resolv.conf file as host:53, leaving
// out loopback ones when skipLoopback (a container cannot reach the
// node's 127.0.0.53).
func Upstream(resolvConf []byte, skipLoopback bool) []string {
	var out []string
	for _, line := range strings.Split(string(resolvConf), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || (skipLoopback && a.IsLoopback()) {
			continue
		}
		out = append(out, net.JoinHostPort(a.String(), "53"))
	}
	return out
}

func (s *Server) clientRecords(client netip.Addr) map[string][]netip.Addr {
	if s.ForClient == nil || !client.IsValid() {
		return nil
	}
	return s.ForClient(client)
}

// clientAddr is the IP address of a query's sender.
func clientAddr(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
