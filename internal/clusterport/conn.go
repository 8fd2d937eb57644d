package clusterport

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
)

// rpcConn hides the *tls.Conn from net/http: its server drops a TLS
// connection whose ALPN protocol is not HTTP, and ours is flotilla-rpc.
// The TLS state travels through the request context instead.
type rpcConn struct {
	net.Conn
	state tls.ConnectionState
}

type connKey struct{}

// Conn is what handlers learn about the connection a request came on.
type Conn struct {
	State tls.ConnectionState
	// Peer caches a handler's verification of the peer certificate: it is
	// the same for every request on the connection, and verifying a chain
	// on each of thousands of heartbeats a second is costly.
	peerOnce sync.Once
	peer     any
	peerErr  error
}

// Peer returns verify's result for this connection, running it once.
func (c *Conn) Peer(verify func(tls.ConnectionState) (any, error)) (any, error) {
	c.peerOnce.Do(func() { c.peer, c.peerErr = verify(c.State) })
	return c.peer, c.peerErr
}

// ConnContext is for http.Server.ConnContext on the RPC sub-listener: it
// makes the connection's TLS state available to handlers via ConnOf.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*rpcConn); ok {
		return context.WithValue(ctx, connKey{}, &Conn{State: rc.state})
	}
	if tc, ok := c.(*tls.Conn); ok {
		return context.WithValue(ctx, connKey{}, &Conn{State: tc.ConnectionState()})
	}
	return ctx
}

// ConnOf returns the connection a request came on (nil without TLS).
func ConnOf(ctx context.Context) *Conn {
	c, _ := ctx.Value(connKey{}).(*Conn)
	return c
}

// TLSState returns the TLS state of the connection a request came on.
func TLSState(ctx context.Context) *tls.ConnectionState {
	if c := ConnOf(ctx); c != nil {
		return &c.State
	}
	return nil
}

// RPCServer readies srv for the RPC sub-listener: HTTP/1, and HTTP/2 for
// peers that chose ProtoRPC2 (their connections arrive without their TLS
// type, so as HTTP/2 with prior knowledge). A follower relays many
// nodes' long-polls to the leader on one connection: hence the streams.
func RPCServer(srv *http.Server) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Protocols = &p
	// The header compression tables keep their default size (4 KiB): a
	// client encodes its first requests for that size before it has the
	// server's settings, and a server that announced a smaller table
	// fails them with COMPRESSION_ERROR (seen with 5,000 nodes joining).
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 4096}
	return srv
}
