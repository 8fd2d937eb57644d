//go:build !linux

package mesh

import (
	"errors"
	"net"
	"net/netip"
)

var errCaptureUnsupported = errors.New("capture: reading a redirected connection's original destination (SO_ORIGINAL_DST) needs Linux")

func captureSupported() error { return errCaptureUnsupported }

// OriginalDst needs Linux's conntrack; elsewhere it always fails.
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errCaptureUnsupported
}
