package mesh

import (
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ip6tSOOriginalDst is IP6T_SO_ORIGINAL_DST (linux/netfilter_ipv6/ip6_tables.h),
// which x/sys/unix does not name.
const ip6tSOOriginalDst = 80

func captureSupported() error { return nil }

// OriginalDst is the address a redirected (REDIRECT or DNAT) TCP
// connection was sent to before the nat rules changed it, from conntrack:
// getsockopt SO_ORIGINAL_DST on SOL_IP for IPv4 (also on a dual-stack
// socket, where the connection's addresses are v4-mapped), and
// IP6T_SO_ORIGINAL_DST on SOL_IPV6 for IPv6. A connection that was not
// redirected gives its own local address, or an error without conntrack.
func OriginalDst(c *net.TCPConn) (netip.AddrPort, error) {
	local, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("original destination: not a TCP connection")
	}
	level, opt := unix.SOL_IP, unix.SO_ORIGINAL_DST
	if local.IP.To4() == nil {
		level, opt = unix.SOL_IPV6, ip6tSOOriginalDst
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var dst netip.AddrPort
	var serr error
	err = rc.Control(func(fd uintptr) { dst, serr = getOriginalDst(fd, level, opt) })
	if err == nil {
		err = serr
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	return dst, nil
}

func getOriginalDst(fd uintptr, level, opt int) (netip.AddrPort, error) {
	// The kernel answers a sockaddr_in or sockaddr_in6: room for either.
	var sa unix.RawSockaddrInet6
	size := uint32(unsafe.Sizeof(sa))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return netip.AddrPort{}, errno
	}
	// The port is in network byte order in both structures.
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p := uint16(port[0])<<8 | uint16(port[1])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), p), nil
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), p), nil
	}
	return netip.AddrPort{}, fmt.Errorf("unexpected address family %d", sa.Family)
}
