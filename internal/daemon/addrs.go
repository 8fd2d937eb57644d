package daemon

import (
	"net"
	"strings"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// DefaultClusterPort is swarm's cluster management port.
const DefaultClusterPort = "2377"

// withPort adds the default port to an address that has none.
func withPort(addr, port string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), port)
}

// resolveAddrs fills in the defaults Docker uses: listen on 0.0.0.0:2377,
// advertise the listen address, or this machine's first non-loopback
// address when listening on all of them.
func resolveAddrs(listen, advertise string) (string, string, error) {
	if listen == "" {
		listen = "0.0.0.0:" + DefaultClusterPort
	}
	listen = withPort(listen, DefaultClusterPort)
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return "", "", errdefs.Invalid("invalid listen address %q: %v", listen, err)
	}
	if advertise != "" {
		advertise = withPort(advertise, lport)
		ahost, _, err := net.SplitHostPort(advertise)
		if err != nil || net.ParseIP(ahost) == nil || net.ParseIP(ahost).IsUnspecified() {
			return "", "", errdefs.Invalid("invalid advertise address %q: it must be a specific IP address, with an optional port", advertise)
		}
		return listen, advertise, nil
	}
	ip := net.ParseIP(lhost)
	if lhost != "" && ip == nil {
		return "", "", errdefs.Invalid("invalid listen address %q: the host must be an IP address", listen)
	}
	if ip != nil && !ip.IsUnspecified() {
		return listen, listen, nil
	}
	guess, err := firstAddress()
	if err != nil {
		return "", "", err
	}
	return listen, net.JoinHostPort(guess, lport), nil
}

func firstAddress() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.String(), nil
		}
	}
	return "", errdefs.Invalid("could not choose an IP address to advertise: this machine has no non-loopback IPv4 address; specify one with --advertise-addr")
}

// splitRemotes accepts "a,b" as well as separate entries, since the docker
// CLI passes its argument through as one string.
func splitRemotes(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, withPort(p, DefaultClusterPort))
			}
		}
	}
	return out
}

// checkListen fails early when the cluster port cannot be bound, before
// anything is asked of the managers.
func checkListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errdefs.Invalid("cannot listen on %s for the cluster port: %v; choose another --listen-addr", addr, err)
	}
	return ln.Close()
}
