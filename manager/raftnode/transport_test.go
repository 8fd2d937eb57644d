package raftnode

import (
	"errors"
	"net"
	"testing"
)

// chanListener hands out the connections pushed into it.
type chanListener struct {
	conns  chan net.Conn
	closed chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { close(l.closed); return nil }
func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }

type trackedConn struct {
	net.Conn
	name   string
	closed bool
}

func (c *trackedConn) Close() error { c.closed = true; return nil }

// The stream layer hands Raft only the connections AcceptPeer approves,
// closing the others, and reports the advertise address, not the bind.
func TestStreamLayerVetsPeers(t *testing.T) {
	ln := &chanListener{conns: make(chan net.Conn, 3), closed: make(chan struct{})}
	bad1, bad2, good := &trackedConn{name: "bad1"}, &trackedConn{name: "bad2"}, &trackedConn{name: "good"}
	ln.conns <- bad1
	ln.conns <- bad2
	ln.conns <- good
	adv := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 2377}
	sl := &streamLayer{ln: ln, advertise: adv, accept: func(c net.Conn) bool { return c.(*trackedConn).name == "good" }}
	c, err := sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if c != good || good.closed {
		t.Errorf("accepted %v (closed %v), want the good one open", c, good.closed)
	}
	if !bad1.closed || !bad2.closed {
		t.Errorf("refused connections left open: %v %v", bad1.closed, bad2.closed)
	}
	if sl.Addr().String() != "10.1.2.3:2377" {
		t.Errorf("Addr = %s", sl.Addr())
	}
	if err := sl.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sl.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v", err)
	}

	// Without a vetting function every connection is taken.
	ln2 := &chanListener{conns: make(chan net.Conn, 1), closed: make(chan struct{})}
	ln2.conns <- bad1
	if c, err := (&streamLayer{ln: ln2}).Accept(); err != nil || c != bad1 {
		t.Errorf("Accept without AcceptPeer = %v, %v", c, err)
	}
}
