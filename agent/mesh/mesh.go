// Package mesh is the routing mesh: every node accepts connections on
// every published ingress port and hands each to a running task of the
// service, on this node or another. It is a user-space TCP proxy: on Linux
// io.Copy between two TCP connections uses splice(2), and the payload is
// never rewritten. To reach a task on another node it goes through that
// node's cluster port (mutual TLS, ALPN flotilla-mesh/1), where the node
// connects to its own task; tasks are never exposed on a host port.
//
// The table of services and tasks comes from the managers (Update): a task
// is in it only while it runs on a Ready node, and connections open to a
// task that leaves it are closed.
package mesh

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// dialTimeout bounds connecting to one task; maxTries is how many tasks a
// connection tries before it is refused (a task may have just died).
const (
	dialTimeout = 2 * time.Second
	maxTries    = 3
	// suspectFor is how long a node that failed a connection is tried
	// last: about the time the managers take to mark it Down.
	suspectFor = 3 * time.Second
)

// Config is what a node's mesh needs.
type Config struct {
	NodeID string
	// BindHost is the address published ports listen on ("" for all of
	// the node's addresses).
	BindHost string
	// Local is where a task of this node listens on a target port.
	Local func(ctx context.Context, taskID string, p driver.Port) (string, error)
	// DialPeer opens a mesh connection to another node's cluster port.
	DialPeer func(ctx context.Context, addr string) (net.Conn, error)
	// Kernel writes the nat rules that take connections to this node's
	// own tasks off the user-space path; nil keeps them all here.
	Kernel Publisher
	// Between sends, with Kernel, other nodes' shares of a published port
	// by DNAT to their address, in plain text (kernel.go); false relays
	// them over the cluster port's mutual TLS.
	Between bool
	// Self is this node's cluster address (host): the source of
	// connections Between sends to other nodes.
	Self netip.Addr
	Log  *slog.Logger

	// kernelPassed, in tests, hears each time the kernel loop is about
	// to wait: what it wrote before is visible.
	kernelPassed chan struct{}
}

// Mesh is one node's routing mesh.
type Mesh struct {
	cfg Config

	mu        sync.Mutex
	closed    bool
	listeners map[uint32]*listener      // by published port (tcp)
	conns     map[string]map[*pair]bool // open connections by task
	relayed   map[string]map[*pair]bool // connections other nodes relayed here, by task
	backends  map[string]bool           // tasks in the table
	failed    map[published]string      // published ports that could not be opened, and why
	udp       map[int]*udpListener      // by published port
	suspect   map[string]time.Time      // nodes tried last until then
	addrs     map[netip.Addr]*addrRoute // VIPs and task addresses on swarm networks
	kernel    map[uint32]kernelPort     // what the kernel path takes, by published port
	peers     []netip.Addr              // the cluster's nodes (SetPeers)

	kernelKick chan struct{}
	kernelStop chan struct{}
	kernelDone chan struct{}
	closeOnce  sync.Once
}

type listener struct {
	ln    net.Listener
	route atomic.Pointer[route]
}

// route is one published port's current backends.
type route struct {
	port     uint32 // published
	service  string
	target   driver.Port
	proxy    string
	backends []nodeapi.Backend
	next     atomic.Uint64
}

// pair is a proxied connection: the client's and the task's side, and
// while the task is being dialled (upstream nil), the dial's cancel.
type pair struct {
	client, upstream net.Conn
	cancel           context.CancelFunc
}

func (p *pair) close() {
	if p.cancel != nil {
		p.cancel()
	}
	p.client.Close()
	if p.upstream != nil {
		p.upstream.Close()
	}
}

// New returns an empty mesh; Update opens its listeners.
func New(cfg Config) *Mesh {
	m := &Mesh{cfg: cfg, listeners: map[uint32]*listener{}, conns: map[string]map[*pair]bool{},
		relayed: map[string]map[*pair]bool{}, backends: map[string]bool{}, failed: map[published]string{},
		udp: map[int]*udpListener{}, suspect: map[string]time.Time{}}
	if cfg.Kernel != nil {
		m.kernelKick, m.kernelStop, m.kernelDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go m.kernelLoop()
	}
	return m
}

// Update applies a new table: listeners open and close with published
// ports, and connections to tasks no longer in the table are closed.
func (m *Mesh) Update(routes []nodeapi.Route) {
	want, wantUDP := map[uint32]*route{}, map[uint32]*route{}
	backends := map[string]bool{}
	addrs := addrTable(routes)
	for _, r := range routes {
		for _, p := range r.Ports {
			if p.PublishMode != swarm.PortConfigPublishModeIngress {
				continue
			}
			rt := &route{port: p.PublishedPort, service: r.ServiceName, target: driver.Port{Target: p.TargetPort, Proto: "tcp"},
				proxy: r.ProxyProtocol, backends: r.Backends}
			// Each node starts its round robin somewhere else, so the
			// first connections to different nodes spread too.
			rt.next.Store(rand.Uint64())
			switch p.Protocol {
			case "", "tcp":
				want[p.PublishedPort] = rt
			case "udp":
				rt.target.Proto, rt.proxy = "udp", "" // PROXY headers are for streams
				wantUDP[p.PublishedPort] = rt
			}
		}
		for _, b := range r.Backends {
			backends[b.TaskID] = true
		}
	}
	if m.cfg.Kernel != nil {
		defer m.kick() // after the lock: the rules follow the new table
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for port, l := range m.listeners {
		if want[port] == nil {
			l.ln.Close()
			delete(m.listeners, port)
		}
	}
	for p := range m.failed {
		if (p.proto == "tcp" && want[p.port] == nil) || (p.proto == "udp" && wantUDP[p.port] == nil) {
			delete(m.failed, p)
		}
	}
	for port, r := range want {
		l := m.listeners[port]
		if l == nil {
			addr := net.JoinHostPort(m.cfg.BindHost, strconv.Itoa(int(port)))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				m.listenFailed(published{port, "tcp"}, addr, r.service, err)
				continue
			}
			delete(m.failed, published{port, "tcp"})
			l = &listener{ln: ln}
			m.listeners[port] = l
			go m.serve(l)
		}
		l.route.Store(r)
	}
	m.updateUDP(wantUDP)
	m.backends = backends
	m.addrs = addrs
	for task, ps := range m.conns {
		if !backends[task] {
			for p := range ps {
				if p.upstream == nil {
					// Nothing reached the client yet: handle tries another
					// task rather than fail it (a dead machine's dial would
					// hang until then).
					p.cancel()
					continue
				}
				p.close()
			}
		}
	}
}

// listenFailed logs a published port that could not be opened, once per
// reason: it is tried again with every table the managers send (m.mu
// held).
func (m *Mesh) listenFailed(p published, addr, service string, err error) {
	if m.failed[p] != err.Error() {
		m.cfg.Log.Warn("routing mesh: cannot listen on a published port", "proto", p.proto, "addr", addr, "service", service, "err", err)
	}
	m.failed[p] = err.Error()
}

// published is a published port and its protocol.
type published struct {
	port  uint32
	proto string
}

// Close stops every listener and connection.
func (m *Mesh) Close() {
	m.closeOnce.Do(func() {
		if m.cfg.Kernel != nil {
			// Outside m.mu: the loop takes it.
			close(m.kernelStop)
			<-m.kernelDone
		}
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for port, l := range m.listeners {
		l.ln.Close()
		delete(m.listeners, port)
	}
	for port, l := range m.udp {
		l.pc.Close()
		delete(m.udp, port)
	}
	for _, conns := range []map[string]map[*pair]bool{m.conns, m.relayed} {
		for _, ps := range conns {
			for p := range ps {
				p.close()
			}
		}
	}
}

func (m *Mesh) serve(l *listener) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		r := l.route.Load()
		go m.handle(r, r.target, c.LocalAddr().String(), c)
	}
}

// handle proxies one client connection to a backend on its target port,
// trying the next one when a task cannot be reached. dst is the address
// the client connected to, for the PROXY header.
func (m *Mesh) handle(r *route, target driver.Port, dst string, client net.Conn) {
	n := uint64(len(r.backends))
	if n == 0 {
		client.Close() // nothing runs: refuse rather than hang
		return
	}
	for _, b := range m.candidates(r, m.kernelTook(r.port, client)) {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		p := &pair{client: client, cancel: cancel}
		if !m.track(b.TaskID, p, true) {
			cancel()
			continue // left the table since this route was read
		}
		up, err := m.dial(ctx, b, relayHeader{Task: b.TaskID, Port: target, Proxy: r.proxy,
			Client: client.RemoteAddr().String(), Dst: dst})
		cancelled := ctx.Err() == context.Canceled // by Update: the task left, not its node's fault
		cancel()
		if err != nil {
			m.untrack(b.TaskID, p)
			if b.NodeID != m.cfg.NodeID && !cancelled {
				m.suspectNode(b.NodeID)
			}
			m.cfg.Log.Debug("routing mesh: task unreachable, trying another", "service", r.service, "task", b.TaskID, "err", err)
			continue
		}
		m.mu.Lock()
		stillIn := !m.closed && m.backends[b.TaskID]
		if stillIn {
			p.upstream = up
		}
		m.mu.Unlock()
		if !stillIn {
			// The task left the table while we dialled.
			up.Close()
			m.untrack(b.TaskID, p)
			continue
		}
		splice(client, up)
		m.untrack(b.TaskID, p)
		return
	}
	client.Close()
}

// candidates are the backends a new connection tries, in turn from the
// route's round robin: those on nodes that failed a connection in the
// last suspectFor come last (a silent node costs each connection the
// whole dial timeout until the managers mark it Down), and those the
// kernel path already gave their share (skip) only when nothing else is
// left.
func (m *Mesh) candidates(r *route, skip map[string]bool) []nodeapi.Backend {
	n := uint64(len(r.backends))
	start := r.next.Add(1)
	now := time.Now()
	m.mu.Lock()
	var good, bad, took []nodeapi.Backend
	for i := range n {
		b := r.backends[(start+i)%n]
		if skip[b.TaskID] {
			took = append(took, b)
		} else if now.Before(m.suspect[b.NodeID]) {
			bad = append(bad, b)
		} else {
			good = append(good, b)
		}
	}
	m.mu.Unlock()
	out := append(append(good, bad...), took...)
	return out[:min(len(out), maxTries)]
}

func (m *Mesh) suspectNode(nodeID string) {
	m.mu.Lock()
	m.suspect[nodeID] = time.Now().Add(suspectFor)
	m.mu.Unlock()
}

// track records an open connection to task; inTable says the task must be
// in this node's table (the relay side checks only that the task runs
// here: its own table may lag the caller's).
func (m *Mesh) track(task string, p *pair, inTable bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || (inTable && !m.backends[task]) {
		return false
	}
	conns := m.conns
	if !inTable {
		conns = m.relayed
	}
	if conns[task] == nil {
		conns[task] = map[*pair]bool{}
	}
	conns[task][p] = true
	return true
}

func (m *Mesh) untrack(task string, p *pair) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, conns := range []map[string]map[*pair]bool{m.conns, m.relayed} {
		delete(conns[task], p)
		if len(conns[task]) == 0 {
			delete(conns, task)
		}
	}
}

// dial connects to a backend: directly when the task is on this node,
// through its node's mesh relay otherwise.
func (m *Mesh) dial(ctx context.Context, b nodeapi.Backend, h relayHeader) (net.Conn, error) {
	if b.NodeID == m.cfg.NodeID {
		return m.dialLocal(ctx, h)
	}
	return m.dialRelay(ctx, b.NodeAddr, h)
}

// dialLocal connects to a task of this node and sends the PROXY header
// the service asked for.
func (m *Mesh) dialLocal(ctx context.Context, h relayHeader) (net.Conn, error) {
	addr, err := m.cfg.Local(ctx, h.Task, h.Port)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("task %s at %s: %w", h.Task, addr, err)
	}
	hdr, err := proxyHeader(h.Proxy, tcpAddr(h.Client), tcpAddr(h.Dst))
	if err == nil && hdr != nil {
		_, err = up.Write(hdr)
	}
	if err != nil {
		up.Close()
		return nil, err
	}
	return up, nil
}

func tcpAddr(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		return nil
	}
	return a
}
