package mesh

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A connection made straight to the capture port (not redirected) gives
// the listener's own address when conntrack follows it, or
// ErrNoOriginalDst without conntrack; either way the listener goes on.
// Redirected connections are tested in agent/netrules, in network
// namespaces with real nat rules.
func TestCaptureNotRedirected(t *testing.T) {
	ln, err := ListenCapture("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		c   Captured
		err error
	}
	got := make(chan result, 2)
	go func() {
		for {
			c, err := ln.Accept()
			got <- result{c, err}
			if err != nil && !errors.Is(err, ErrNoOriginalDst) {
				return
			}
		}
	}()
	want := netip.MustParseAddrPort(ln.Addr().String())
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		select {
		case r := <-got:
			switch {
			case r.err == nil:
				r.c.Conn.Close()
				if r.c.Dst != want {
					t.Fatalf("original destination %s, want %s (the listener's)", r.c.Dst, want)
				}
			case errors.Is(r.err, ErrNoOriginalDst):
				t.Logf("no conntrack here: %v", r.err)
			default:
				t.Fatal(r.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("nothing accepted")
		}
	}
	ln.Close()
	if r := <-got; !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("after Close: %v", r.err)
	}
}
