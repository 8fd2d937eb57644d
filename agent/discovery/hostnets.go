package discovery

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"strings"
)

// A swarm network's subnet is captured for the node's own connections, so
// one that overlaps a network the host is on would take the host's own
// traffic there (its peers, its gateway) into the mesh. Such a subnet is
// not captured, and the node says why.

// hostNets are the networks the host is on: its interfaces' subnets
// (loopback aside) and the destinations of its routes other than the
// default one.
func hostNets() []netip.Prefix {
	var out []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if p, err := netip.ParsePrefix(ipn.String()); err == nil && !p.Addr().IsLoopback() && p.Addr().Is4() {
					out = append(out, p.Masked())
				}
			}
		}
	}
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		dst, ok1 := routeAddr(fields[1])
		mask, ok2 := routeAddr(fields[7])
		if !ok1 || !ok2 {
			continue
		}
		bits := 0
		for _, b := range mask.As4() {
			for ; b != 0; b <<= 1 {
				bits++
			}
		}
		if bits == 0 {
			continue // the default route
		}
		out = append(out, netip.PrefixFrom(dst, bits).Masked())
	}
	return out
}

// routeAddr reads an address as /proc/net/route prints it: hex, in the
// host's byte order (little endian on the machines flotilla runs on).
func routeAddr(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, false
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
	return netip.AddrFrom4(a), true
}

// clashes returns the host network a subnet overlaps, if any.
func clashes(subnet netip.Prefix, host []netip.Prefix) (netip.Prefix, bool) {
	for _, h := range host {
		if h.Overlaps(subnet) {
			return h, true
		}
	}
	return netip.Prefix{}, false
}
