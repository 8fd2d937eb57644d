package nodeapi

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// slowHandshakeListener holds each accepted connection's first read, so
// the server's side of the TLS handshake starts late.
type slowHandshakeListener struct {
	net.Listener
	hold time.Duration
}

func (l slowHandshakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &slowFirstRead{Conn: c, hold: l.hold}, nil
}

type slowFirstRead struct {
	net.Conn
	hold time.Duration
	held bool
}

func (c *slowFirstRead) Read(b []byte) (int, error) {
	if !c.held {
		c.held = true
		time.Sleep(c.hold)
	}
	return c.Conn.Read(b)
}

// A TLS handshake that takes longer than the connect bound still
// completes: under a storm of nodes reconnecting, cutting it would throw
// away the work done and start again.
func TestDialLetsASlowHandshakeFinish(t *testing.T) {
	old := connectTimeout
	connectTimeout = 100 * time.Millisecond
	t.Cleanup(func() { connectTimeout = old })

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Listener = slowHandshakeListener{Listener: srv.Listener, hold: 3 * connectTimeout}
	srv.StartTLS()
	defer srv.Close()

	addr := srv.Listener.Addr().String()
	c, err := dialTLS(context.Background(), "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("dial with a handshake slower than the connect bound: %v", err)
	}
	c.Close()

	// A peer that never answers the handshake is still given up.
	handshake := handshakeTimeout
	handshakeTimeout = 2 * connectTimeout
	t.Cleanup(func() { handshakeTimeout = handshake })
	if c, err := dialTLS(context.Background(), "tcp", addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Fatal("dial succeeded although the handshake outlasted its bound")
	}
}
