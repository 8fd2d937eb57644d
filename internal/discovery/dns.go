package discovery

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// dnsName resolves one name to all its A/AAAA records: one address per
// manager, all on the same port.
type dnsName struct {
	host, port string
	r          *net.Resolver
}

func newDNS(arg string, r *net.Resolver) (*dnsName, error) {
	host, port := arg, DefaultPort
	if h, p, err := net.SplitHostPort(arg); err == nil {
		host, port = h, p
	}
	if host == "" || strings.ContainsAny(host, " ,/") {
		return nil, fmt.Errorf("discovery spec dns:%s: want dns:NAME or dns:NAME:PORT", arg)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("discovery spec dns:%s: port %q is not a number", arg, port)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	return &dnsName{host: host, port: port, r: r}, nil
}

func (d *dnsName) Managers(ctx context.Context) ([]string, error) {
	ips, err := d.r.LookupIPAddr(ctx, d.host)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.IP.String(), d.port))
	}
	return out, nil
}

func (d *dnsName) String() string { return "dns " + net.JoinHostPort(d.host, d.port) }

// dnsSRV reads SRV records: each gives a manager's host and port, in the
// records' priority and weight order.
type dnsSRV struct {
	name string
	r    *net.Resolver
}

func newSRV(name string, r *net.Resolver) (*dnsSRV, error) {
	if name == "" || strings.ContainsAny(name, " ,/:") {
		return nil, fmt.Errorf("discovery spec dns+srv:%s: want dns+srv:_service._proto.DOMAIN", name)
	}
	if r == nil {
		r = net.DefaultResolver
	}
	return &dnsSRV{name: name, r: r}, nil
}

func (d *dnsSRV) Managers(ctx context.Context) ([]string, error) {
	_, srvs, err := d.r.LookupSRV(ctx, "", "", d.name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d, err)
	}
	out := make([]string, 0, len(srvs))
	for _, s := range srvs {
		out = append(out, net.JoinHostPort(strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))))
	}
	return out, nil
}

func (d *dnsSRV) String() string { return "dns srv " + d.name }
