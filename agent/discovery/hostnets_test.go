package discovery

import (
	"net/netip"
	"testing"
)

func TestRouteAddrAndClashes(t *testing.T) {
	// As /proc/net/route prints docker0's route: 172.17.0.0/16.
	dst, ok1 := routeAddr("000011AC")
	mask, ok2 := routeAddr("0000FFFF")
	if !ok1 || !ok2 || dst != netip.MustParseAddr("172.17.0.0") || mask != netip.MustParseAddr("255.255.0.0") {
		t.Fatalf("routeAddr: %v %v %v %v", dst, ok1, mask, ok2)
	}
	if _, ok := routeAddr("zz"); ok {
		t.Error("routeAddr took a malformed field")
	}
	host := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("192.168.1.0/24")}
	if h, ok := clashes(netip.MustParsePrefix("10.0.1.0/24"), host); !ok || h != host[0] {
		t.Errorf("10.0.1.0/24 inside the host's 10.0.0.0/16: %v %v", h, ok)
	}
	if _, ok := clashes(netip.MustParsePrefix("10.1.0.0/24"), host); ok {
		t.Error("10.1.0.0/24 clashes with nothing of the host's")
	}
	// The host's own networks are read without error here.
	for _, p := range hostNets() {
		if !p.IsValid() || p.Addr().IsLoopback() {
			t.Errorf("hostNets gave %v", p)
		}
	}
}
