package mesh

import (
	"encoding/binary"
	"fmt"
	"net"
)

// PROXY protocol versions a service may ask for.
const (
	ProxyV1 = "v1"
	ProxyV2 = "v2"
)

// v2Signature starts every PROXY protocol v2 header.
var v2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyHeader is the PROXY protocol header that tells a task who the
// client is (src) and which address it connected to (dst); nil for "".
// Mixed or non-TCP addresses are sent as UNKNOWN (v1) or LOCAL (v2), which
// receivers accept and treat as "no address".
func proxyHeader(version string, src, dst net.Addr) ([]byte, error) {
	s, sok := src.(*net.TCPAddr)
	d, dok := dst.(*net.TCPAddr)
	known := sok && dok && (s.IP.To4() != nil) == (d.IP.To4() != nil)
	switch version {
	case "":
		return nil, nil
	case ProxyV1:
		if !known {
			return []byte("PROXY UNKNOWN\r\n"), nil
		}
		fam := "TCP6"
		if s.IP.To4() != nil {
			fam = "TCP4"
		}
		return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", fam, s.IP, d.IP, s.Port, d.Port), nil
	case ProxyV2:
		h := append([]byte(nil), v2Signature...)
		if !known {
			return append(h, 0x20, 0x00, 0, 0), nil // version 2, LOCAL, no address
		}
		var addrs []byte
		fam := byte(0x21) // TCP over IPv6
		if s4, d4 := s.IP.To4(), d.IP.To4(); s4 != nil {
			fam = 0x11 // TCP over IPv4
			addrs = append(append(addrs, s4...), d4...)
		} else {
			addrs = append(append(addrs, s.IP.To16()...), d.IP.To16()...)
		}
		addrs = binary.BigEndian.AppendUint16(addrs, uint16(s.Port))
		addrs = binary.BigEndian.AppendUint16(addrs, uint16(d.Port))
		h = append(h, 0x21, fam) // version 2, PROXY
		h = binary.BigEndian.AppendUint16(h, uint16(len(addrs)))
		return append(h, addrs...), nil
	}
	return nil, fmt.Errorf("unknown PROXY protocol version %q: use v1 or v2", version)
}
