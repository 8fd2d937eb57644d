// Package hostsim makes separate hosts on one machine for tests and
// benchmarks: one network namespace per host, each with its own address
// on a veth plugged into a bridge, and a veth from the root namespace so
// the caller reaches them as an outside client would. It needs root and
// iproute2.
//
// The bridge lives in a namespace of its own: with Docker installed, the
// root namespace's FORWARD policy is DROP and bridged frames go through it
// (br_netfilter), which would cut the hosts off from each other; a fresh
// namespace has no rules, and the host's firewall is left untouched.
package hostsim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Net is a network of simulated hosts.
type Net struct {
	Prefix string   // of the namespaces' names, unique to this process
	Subnet string   // "10.77.N."; the root namespace is .1
	HostIf string   // the root namespace's veth
	Hosts  []string // the hosts' namespaces
	Addrs  []string // their addresses, .11 onwards

	undo []func() error // in reverse order
}

// Switch is the namespace holding the bridge; host i's port on it is
// "h<i+1>".
func (n *Net) Switch() string { return n.Prefix + "sw" }

// Exec is the command prefix that runs a program on host i.
func (n *Net) Exec(i int) []string { return []string{"ip", "netns", "exec", n.Hosts[i]} }

// Cut takes host i off the network, as a pulled cable does.
func (n *Net) Cut(i int) error {
	return ip("-n", n.Switch(), "link", "set", fmt.Sprintf("h%d", i+1), "down")
}

// New makes the bridge and hosts namespaces (prefix names them, e.g.
// "fe2e-PID-"). On error, what was made is removed.
func New(prefix, hostIf string, hosts int) (_ *Net, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("separate hosts need network namespaces: run as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("separate hosts need network namespaces: the `ip` command (iproute2) is not installed")
	}
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	n := &Net{Prefix: prefix, Subnet: subnet, HostIf: hostIf}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Close())
		}
	}()
	sw := n.Switch()
	if err := n.addNetns(sw); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"-n", sw, "link", "add", "br0", "type", "bridge"},
		{"-n", sw, "link", "set", "br0", "up"},
		{"link", "add", hostIf, "type", "veth", "peer", "name", "up0", "netns", sw},
	}
	if err := ips(steps...); err != nil {
		return nil, err
	}
	// A switch does not track connections: with br_netfilter loaded (as
	// Docker does), bridged frames would go through conntrack here.
	if out, err := exec.Command("ip", "netns", "exec", sw, "sh", "-c",
		"f=/proc/sys/net/bridge/bridge-nf-call-iptables; [ ! -e $f ] || echo 0 > $f").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("turning bridge netfilter off in %s: %v: %s", sw, err, out)
	}
	// The root namespace's veth goes away with its peer in sw; removed
	// explicitly too in case sw lives on.
	n.undo = append(n.undo, func() error {
		if out, err := exec.Command("ip", "link", "del", hostIf).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			return fmt.Errorf("removing %s: %v: %s", hostIf, err, out)
		}
		return nil
	})
	if err := ips([]string{"-n", sw, "link", "set", "up0", "master", "br0", "up"},
		[]string{"addr", "add", subnet + "1/24", "dev", hostIf},
		[]string{"link", "set", hostIf, "up"}); err != nil {
		return nil, err
	}
	for i := range hosts {
		ns, port, addr := fmt.Sprintf("%sh%d", prefix, i+1), fmt.Sprintf("h%d", i+1), fmt.Sprintf("%s%d", subnet, 11+i)
		if err := n.addNetns(ns); err != nil {
			return nil, err
		}
		if err := ips([]string{"-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", sw, "link", "set", port, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			// Process-driver tasks listen on the namespace's own 127.0.0.1.
			[]string{"-n", ns, "link", "set", "lo", "up"},
			// A default route, as real hosts have: a connection to a swarm
			// network's address needs a route before the node's nat rules
			// redirect it to the mesh.
			[]string{"-n", ns, "route", "add", "default", "via", subnet + "1"}); err != nil {
			return nil, err
		}
		n.Hosts = append(n.Hosts, ns)
		n.Addrs = append(n.Addrs, addr)
	}
	return n, nil
}

// Close removes everything New made. A process still in a namespace is
// killed (else the namespace would outlive its name) and reported.
func (n *Net) Close() error {
	var errs []error
	for _, u := range slices.Backward(n.undo) {
		errs = append(errs, u())
	}
	n.undo = nil
	return errors.Join(errs...)
}

// addNetns makes a namespace and registers its removal.
func (n *Net) addNetns(name string) error {
	if err := ip("netns", "add", name); err != nil {
		return err
	}
	n.undo = append(n.undo, func() error {
		var errs []error
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		for _, f := range strings.Fields(string(out)) {
			errs = append(errs, fmt.Errorf("process %s still in namespace %s: killed", f, name))
			_ = exec.Command("kill", "-9", f).Run()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("removing namespace %s: %v: %s", name, err, out))
		}
		return errors.Join(errs...)
	})
	return nil
}

// freeSubnet picks a 10.77.N.0/24 that no address or route of this
// machine covers: one that only the default route (a gateway) leads to.
func freeSubnet() (string, error) {
	addrs, err := exec.Command("ip", "-4", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip addr: %v: %s", err, addrs)
	}
	for i := range 200 {
		subnet := fmt.Sprintf("10.77.%d.", 10+(os.Getpid()+i)%200)
		if strings.Contains(string(addrs), " "+subnet) {
			continue
		}
		out, err := exec.Command("ip", "-4", "-o", "route", "get", subnet+"1").CombinedOutput()
		// Only the default route (via the gateway) leads there; "unreachable"
		// (no default route) is as good.
		if err == nil && !strings.Contains(string(out), " via ") {
			continue
		}
		return subnet, nil
	}
	return "", errors.New("no free 10.77.N.0/24 subnet for the namespaces")
}

func ips(steps ...[]string) error {
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
