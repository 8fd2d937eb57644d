package clusterport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/internal/clusterport"
)

// testTLS makes a self-signed certificate for 127.0.0.1 and returns a
// server config that asks for client certificates, and a client config
// for a protocol list that trusts the server and presents the same cert.
func testTLS(t *testing.T) (server *tls.Config, client func(protos ...string) *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "node"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    pool,
	}
	client = func(protos ...string) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{cert}, NextProtos: protos}
	}
	return server, client
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newMux(t *testing.T) (*clusterport.Mux, func(protos ...string) *tls.Config) {
	t.Helper()
	server, client := testTLS(t)
	m, err := clusterport.Listen("127.0.0.1:0", server, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, client
}

func dial(t *testing.T, m *clusterport.Mux, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", m.Addr().String())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*tls.Conn), nil
}

type accepted struct {
	c   net.Conn
	err error
}

// acceptAsync runs one Accept in the background.
func acceptAsync(ln net.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	return ch
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// expectDropped checks that the mux closes a connection it has no
// listener for: the client's read ends without data.
func expectDropped(t *testing.T, c *tls.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [1]byte
	n, err := c.Read(buf[:])
	var ne net.Error
	if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read on a connection that should be dropped: %d bytes, %v", n, err)
	}
}

func TestRoutesByALPN(t *testing.T) {
	m, client := newMux(t)
	raftL := m.Sub(clusterport.ProtoRaft)
	rpcL := m.Sub(clusterport.ProtoRPC)
	if raftL.Addr().String() != m.Addr().String() || rpcL.Addr().String() != m.Addr().String() {
		t.Errorf("sub-listener addrs %s, %s; want the port's %s", raftL.Addr(), rpcL.Addr(), m.Addr())
	}

	// Raft gets the *tls.Conn itself: its peer check reads the certificate.
	raftAcc := acceptAsync(raftL)
	c, err := dial(t, m, client(clusterport.ProtoRaft))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.ConnectionState().NegotiatedProtocol; p != clusterport.ProtoRaft {
		t.Fatalf("negotiated %q", p)
	}
	a := wait(t, raftAcc, "the raft connection")
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	tc, ok := a.c.(*tls.Conn)
	if !ok {
		t.Fatalf("raft sub-listener got a %T, want *tls.Conn", a.c)
	}
	if st := tc.ConnectionState(); st.NegotiatedProtocol != clusterport.ProtoRaft || len(st.PeerCertificates) != 1 {
		t.Errorf("server side state: proto %q, %d peer certs", st.NegotiatedProtocol, len(st.PeerCertificates))
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(a.c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := a.c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}

	// RPC is served by net/http, which gets the TLS state through
	// ConnContext although the ALPN protocol is not HTTP's.
	srv := &http.Server{
		ConnContext: clusterport.ConnContext,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			st := clusterport.TLSState(r.Context())
			if st == nil {
				http.Error(w, "no TLS state", http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, st.NegotiatedProtocol+" "+st.PeerCertificates[0].Subject.CommonName)
		}),
	}
	go func() { _ = srv.Serve(rpcL) }()
	defer srv.Close()
	cfg := client(clusterport.ProtoRPC)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
		},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("https://" + m.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != clusterport.ProtoRPC+" node" {
		t.Errorf("rpc answer %d %q", resp.StatusCode, body)
	}

	// Nothing more reached the raft listener.
	raftAcc = acceptAsync(raftL)
	raftL.Close()
	if a := wait(t, raftAcc, "raft Accept to end"); a.err == nil {
		t.Errorf("raft listener got a stray connection from %s", a.c.RemoteAddr())
	}
}

func TestConnContextWithoutTLS(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ctx := clusterport.ConnContext(context.Background(), a)
	if clusterport.TLSState(ctx) != nil {
		t.Error("TLS state for a plain connection")
	}
	if clusterport.TLSState(context.Background()) != nil {
		t.Error("TLS state in an empty context")
	}
}

func TestUnknownProtocolIsDropped(t *testing.T) {
	m, client := newMux(t)
	raftL := m.Sub(clusterport.ProtoRaft)
	raftAcc := acceptAsync(raftL)

	// A protocol the port does not speak fails the handshake.
	if _, err := dial(t, m, client("h2", "http/1.1")); err == nil {
		t.Error("handshake with only unknown protocols succeeded")
	} else if !strings.Contains(err.Error(), "application protocol") {
		t.Logf("handshake error: %v", err)
	}
	// No ALPN at all: TLS is fine, then the mux hangs up.
	c, err := dial(t, m, client())
	if err != nil {
		t.Fatal(err)
	}
	expectDropped(t, c)
	// A protocol of ours nobody listens to yet is dropped too.
	c, err = dial(t, m, client(clusterport.ProtoRPC))
	if err != nil {
		t.Fatal(err)
	}
	expectDropped(t, c)
	// Not TLS at all.
	raw, err := net.DialTimeout("tcp", m.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = raw.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(raw); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Error("a plain-text connection was not closed")
		}
	}

	// None of it reached the raft listener, which still works.
	c, err = dial(t, m, client(clusterport.ProtoRaft))
	if err != nil {
		t.Fatal(err)
	}
	a := wait(t, raftAcc, "the raft connection")
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	if a.c.RemoteAddr().String() != c.LocalAddr().String() {
		t.Errorf("raft listener got %s, want the raft client %s", a.c.RemoteAddr(), c.LocalAddr())
	}
}

// A peer that connects and says nothing does not hold up the others.
func TestSilentPeerDoesNotBlock(t *testing.T) {
	m, client := newMux(t)
	raftL := m.Sub(clusterport.ProtoRaft)
	silent, err := net.DialTimeout("tcp", m.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	acc := acceptAsync(raftL)
	if _, err := dial(t, m, client(clusterport.ProtoRaft)); err != nil {
		t.Fatal(err)
	}
	if a := wait(t, acc, "the raft connection"); a.err != nil {
		t.Fatal(a.err)
	} else {
		a.c.Close()
	}
}

// Demote then promote: the node's Raft closes its listener and a new Raft
// opens another on the same port.
func TestSubReopenAfterClose(t *testing.T) {
	m, client := newMux(t)
	first := m.Sub(clusterport.ProtoRaft)
	acc := acceptAsync(first)
	first.Close()
	if a := wait(t, acc, "Accept after Close"); !errors.Is(a.err, net.ErrClosed) {
		t.Fatalf("Accept on a closed sub-listener = %v, %v; want net.ErrClosed", a.c, a.err)
	}
	if err := first.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// While closed, raft connections are dropped.
	c, err := dial(t, m, client(clusterport.ProtoRaft))
	if err != nil {
		t.Fatal(err)
	}
	expectDropped(t, c)

	second := m.Sub(clusterport.ProtoRaft)
	acc = acceptAsync(second)
	if _, err := dial(t, m, client(clusterport.ProtoRaft)); err != nil {
		t.Fatal(err)
	}
	if a := wait(t, acc, "a raft connection on the reopened listener"); a.err != nil {
		t.Fatal(a.err)
	} else {
		a.c.Close()
	}
	if _, err := first.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the old listener accepts again: %v", err)
	}

	// Sub on an open protocol replaces (and closes) the open listener.
	acc = acceptAsync(second)
	third := m.Sub(clusterport.ProtoRaft)
	if a := wait(t, acc, "Accept on the replaced listener"); !errors.Is(a.err, net.ErrClosed) {
		t.Errorf("replaced listener Accept = %v", a.err)
	}
	acc = acceptAsync(third)
	if _, err := dial(t, m, client(clusterport.ProtoRaft)); err != nil {
		t.Fatal(err)
	}
	if a := wait(t, acc, "a raft connection on the newest listener"); a.err != nil {
		t.Fatal(a.err)
	} else {
		a.c.Close()
	}
}

func TestCloseStopsAccept(t *testing.T) {
	m, client := newMux(t)
	raftL := m.Sub(clusterport.ProtoRaft)
	rpcL := m.Sub(clusterport.ProtoRPC)
	raftAcc, rpcAcc := acceptAsync(raftL), acceptAsync(rpcL)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for name, ch := range map[string]<-chan accepted{"raft": raftAcc, "rpc": rpcAcc} {
		if a := wait(t, ch, name+" Accept after Close"); !errors.Is(a.err, net.ErrClosed) {
			t.Errorf("%s Accept after Close = %v", name, a.err)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// A listener asked for after Close is closed from the start.
	if _, err := m.Sub(clusterport.ProtoRaft).Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a Sub made after Close = %v", err)
	}
	// The port is released.
	if c, err := dial(t, m, client(clusterport.ProtoRaft)); err == nil {
		expectDropped(t, c)
	}
	ln, err := net.Listen("tcp", m.Addr().String())
	if err != nil {
		t.Fatalf("the port is still bound after Close: %v", err)
	}
	ln.Close()
}

func TestListenError(t *testing.T) {
	server, _ := testTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if m, err := clusterport.Listen(ln.Addr().String(), server, quietLog()); err == nil {
		m.Close()
		t.Fatal("Listen on a bound port succeeded")
	}
}
