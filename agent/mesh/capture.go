package mesh

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Captured is a TCP connection the node's nat rules redirected to the
// mesh (agent/netrules), with the address its client meant: a service's
// virtual address or a task's address on a swarm network, and the port.
type Captured struct {
	Conn net.Conn
	Dst  netip.AddrPort
}

// ErrNoOriginalDst is returned by CaptureListener.Accept for a connection
// whose original destination the kernel does not know (it was not
// redirected, or conntrack is not loaded). That connection is closed; the
// listener stays open.
var ErrNoOriginalDst = errors.New("capture: no original destination for the connection")

// CaptureListener accepts the connections redirected to its port and
// reads where each was going (SO_ORIGINAL_DST, Linux only).
type CaptureListener struct {
	ln *net.TCPListener
}

// ListenCapture listens on addr (host:port) for redirected connections.
func ListenCapture(addr string) (*CaptureListener, error) {
	if err := captureSupported(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	return &CaptureListener{ln: ln.(*net.TCPListener)}, nil
}

// Accept waits for the next redirected connection. An error wrapping
// ErrNoOriginalDst concerns that connection only (it is closed); any
// other error is the listener's (net.ErrClosed once closed).
func (l *CaptureListener) Accept() (Captured, error) {
	c, err := l.ln.AcceptTCP()
	if err != nil {
		return Captured{}, err
	}
	dst, err := OriginalDst(c)
	if err != nil {
		c.Close()
		return Captured{}, fmt.Errorf("%w: from %s: %v", ErrNoOriginalDst, c.RemoteAddr(), err)
	}
	return Captured{Conn: c, Dst: dst}, nil
}

// Addr is the address the listener is bound to (the port the nat rules
// redirect to).
func (l *CaptureListener) Addr() net.Addr { return l.ln.Addr() }

// Close stops the listener; connections already accepted stay open.
func (l *CaptureListener) Close() error { return l.ln.Close() }
