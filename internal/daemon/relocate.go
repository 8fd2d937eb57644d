package daemon

import (
	"net"
)

// relocate moves a node that rejoins its swarm to a new cluster address:
// the one given with --listen-addr / --advertise-addr, the instance's IP a
// bootstrap provider reports (providerIP, "" for none), or this machine's
// address chosen again when the node's advertise address was chosen by the
// daemon and the machine no longer has it. It reports whether anything
// changed; the caller saves the state. The managers learn the new address
// from the node's heartbeats.
func (d *Daemon) relocate(st *localState, providerIP string) (bool, error) {
	flagListen, flagAdvertise := d.cfg.Bootstrap.ListenAddr, d.cfg.Bootstrap.AdvertiseAddr
	listen, advertise := st.ListenAddr, st.AdvertiseAddr
	if flagListen != "" {
		listen = withPort(flagListen, DefaultClusterPort)
	}
	var err error
	switch {
	case flagAdvertise != "":
		listen, advertise, err = resolveAddrs(listen, flagAdvertise)
	case providerIP != "" && hostOf(st.AdvertiseAddr) != providerIP:
		_, port, _ := net.SplitHostPort(st.AdvertiseAddr)
		listen, advertise, err = resolveAddrs(listen, net.JoinHostPort(providerIP, port))
	case listen != st.ListenAddr:
		// A new listen address: advertise it, or guess as init would.
		listen, advertise, err = resolveAddrs(listen, "")
	case st.AdvertiseGuessed && !hasLocalIP(hostOf(advertise)):
		listen, advertise, err = resolveAddrs(listen, "")
	}
	if err != nil {
		return false, err
	}
	if listen == st.ListenAddr && advertise == st.AdvertiseAddr {
		return false, nil
	}
	d.log.Info("this node's cluster address changed; the managers will be told", "old_listen", st.ListenAddr, "listen", listen,
		"old_advertise", st.AdvertiseAddr, "advertise", advertise)
	st.ListenAddr, st.AdvertiseAddr = listen, advertise
	return true, nil
}

// advertiseGuessed reports whether resolveAddrs chose the advertise
// address itself: none given, and listening on every address.
func advertiseGuessed(advertise, listen string) bool {
	h := hostOf(listen)
	ip := net.ParseIP(h)
	return advertise == "" && (h == "" || ip != nil && ip.IsUnspecified())
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// hasLocalIP reports whether one of this machine's interfaces has ip.
func hasLocalIP(ip string) bool {
	want := net.ParseIP(ip)
	addrs, err := net.InterfaceAddrs()
	if err != nil || want == nil {
		return true // cannot tell: keep what was chosen
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(want) {
			return true
		}
	}
	return false
}
