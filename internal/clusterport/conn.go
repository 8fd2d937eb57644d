package clusterport

import (
	"context"
	"crypto/tls"
	"net"
)

// rpcConn hides the *tls.Conn from net/http: its server drops a TLS
// connection whose ALPN protocol is not HTTP, and ours is flotilla-rpc.
// The TLS state travels through the request context instead.
type rpcConn struct {
	net.Conn
	state tls.ConnectionState
}

type stateKey struct{}

// ConnContext is for http.Server.ConnContext on the RPC sub-listener: it
// makes the peer's TLS state available to handlers via TLSState.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*rpcConn); ok {
		return context.WithValue(ctx, stateKey{}, &rc.state)
	}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return context.WithValue(ctx, stateKey{}, &st)
	}
	return ctx
}

// TLSState returns the TLS state of the connection a request came on.
func TLSState(ctx context.Context) *tls.ConnectionState {
	st, _ := ctx.Value(stateKey{}).(*tls.ConnectionState)
	return st
}
