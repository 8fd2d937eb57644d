// Package clusterport serves every node-to-node protocol on one TCP port
// (2377 by default), split by TLS ALPN: Raft traffic, the node RPC API and
// the routing mesh.
// One port means one firewall rule and one address per manager, as in swarm.
package clusterport

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ALPN protocol names.
const (
	ProtoRaft = "flotilla-raft/1"
	ProtoRPC  = "flotilla-rpc/1"
	// ProtoRPC2 is the node RPC API over HTTP/2 inside the TLS connection:
	// one connection per peer carries all its requests, where HTTP/1
	// holds one per request in flight (a node's heartbeat and its two
	// long-polls: three connections, with their buffers and goroutines,
	// per node on the leader). Clients offer it before ProtoRPC, so a
	// peer that does not know it is still reached with HTTP/1.
	ProtoRPC2 = "flotilla-rpc/2"
	// ProtoMesh carries the routing mesh's connections to another node's
	// tasks.
	ProtoMesh = "flotilla-mesh/1"
)

// ServerProtos are the protocols a node's cluster port offers, in the
// order it prefers them.
func ServerProtos() []string { return []string{ProtoRaft, ProtoRPC2, ProtoRPC, ProtoMesh} }

// RPCClientProtos are what a client of the node RPC API offers.
func RPCClientProtos() []string { return []string{ProtoRPC2, ProtoRPC} }

// handshakeTimeout bounds a peer that connects and says nothing.
const handshakeTimeout = 10 * time.Second

// Mux accepts TLS connections and hands each to the listener of its protocol.
type Mux struct {
	ln  net.Listener
	tls *tls.Config
	log *slog.Logger

	mu   sync.Mutex
	subs map[string]*subListener

	closeOnce sync.Once
	done      chan struct{}
}

// Listen opens addr and starts accepting. cfg must be a server config whose
// NextProtos include the protocols asked for with Sub.
func Listen(addr string, cfg *tls.Config, log *slog.Logger) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return Serve(ln, cfg, log), nil
}

// Serve starts accepting on an already open listener.
func Serve(ln net.Listener, cfg *tls.Config, log *slog.Logger) *Mux {
	c := cfg.Clone()
	c.NextProtos = ServerProtos()
	m := &Mux{ln: ln, tls: c, subs: map[string]*subListener{}, log: log, done: make(chan struct{})}
	go m.accept()
	return m
}

// Sub returns a new listener for one protocol, closing any earlier one: a
// node that is demoted and promoted again starts a new Raft on the port.
// Connections for a protocol nobody listens to are dropped.
func (m *Mux) Sub(proto string) net.Listener {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.subs[proto]; old != nil {
		old.Close()
	}
	s := &subListener{addr: m.ln.Addr(), conns: make(chan net.Conn), done: m.done, closed: make(chan struct{})}
	m.subs[proto] = s
	return s
}

func (m *Mux) sub(proto string) *subListener {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.subs[proto]
}

// Addr is the bound address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Close stops accepting; sub-listeners return errors from then on.
func (m *Mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		err = m.ln.Close()
	})
	return err
}

func (m *Mux) accept() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log.Warn("cluster port accept failed", "err", err)
			time.Sleep(50 * time.Millisecond) // back off on EMFILE and the like
			continue
		}
		go m.handshake(c)
	}
}

func (m *Mux) handshake(c net.Conn) {
	tc := tls.Server(c, m.tls)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		m.log.Debug("cluster port handshake failed", "remote", c.RemoteAddr(), "err", err)
		c.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	proto := tc.ConnectionState().NegotiatedProtocol
	if proto == ProtoRPC2 {
		proto = ProtoRPC // one server speaks both (http.Server with unencrypted HTTP/2)
	}
	sub := m.sub(proto)
	if sub == nil {
		m.log.Debug("cluster port: peer offered no known protocol", "remote", c.RemoteAddr())
		tc.Close()
		return
	}
	var conn net.Conn = tc
	if proto == ProtoRPC {
		conn = &rpcConn{Conn: tc, state: tc.ConnectionState()}
	}
	select {
	case sub.conns <- conn:
	case <-m.done:
		tc.Close()
	case <-sub.closed:
		tc.Close()
	}
}

type subListener struct {
	addr      net.Addr
	conns     chan net.Conn
	done      chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (s *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close stops this protocol's Accept; the Mux owns the socket, and
// connections for a closed protocol are dropped.
func (s *subListener) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}
func (s *subListener) Addr() net.Addr { return s.addr }
