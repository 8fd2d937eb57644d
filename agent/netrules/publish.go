package netrules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Published ports take a kernel path to the node's own tasks: a nat chain
// of DNAT rules (the node's chain name + "-P"), jumped to from OUTPUT and
// PREROUTING, sends a share of a published port's new connections
// straight to a task of this node, so their bytes never pass through the
// user-space mesh. The rest fall through to the mesh's listener, which
// takes them to the tasks on other nodes. DNAT keeps the client's
// address, and conntrack keeps each connection on its task.

// Forward is one published port's kernel path: the tasks of this node
// that take new connections, each an equal share of Total, the number of
// tasks the port is balanced over on every node.
type Forward struct {
	Port uint16
	// Dst is the node's address the port is published on; the zero Addr
	// is any address of the host (the node listens on all of them).
	Dst     netip.Addr
	Targets []netip.AddrPort
	Total   int
}

// publishChain is the chain of DNAT rules.
func (r *Rules) publishChain() string { return r.chain() + "-P" }

// publishJumps are the rules that jump to the chain: connections made on
// the host, and those routed in.
func (r *Rules) publishJumps() [][]string {
	c := r.publishChain()
	return [][]string{{"OUTPUT", "-j", c}, {"PREROUTING", "-j", c}}
}

// skipIn are the interfaces whose connections to published ports stay on
// the mesh: the engine's bridges. A container on one reaches a task on
// another bridge only through the node (the engine isolates its bridges
// from each other), and a task on its own only with hairpin mode.
var skipIn = []string{"docker0", "br-+"}

// Publish makes the chain hold exactly the forwards given (none removes
// the chain and its jumps), in one iptables-restore: no connection meets
// it half done, and those already forwarded keep their task.
func (r *Rules) Publish(fs []Forward) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forwards = fs
	if len(fs) == 0 {
		return r.removeChain(r.iptables, r.publishChain(), r.publishJumps())
	}
	return r.writePublish()
}

// writePublish writes r.forwards (r.mu held). The bridges of In, this
// node's own, skip the chain as the engine's do.
func (r *Rules) writePublish() error {
	c := r.publishChain()
	var b strings.Builder
	b.WriteString("*nat\n:" + c + " - [0:0]\n")
	for _, in := range append(slices.Clone(skipIn), r.In...) {
		if in != "+" {
			fmt.Fprintf(&b, "-A %s -i %s -j RETURN\n", c, in)
		}
	}
	for _, f := range r.forwards {
		if f.Port == 0 || len(f.Targets) == 0 || f.Total < len(f.Targets) {
			return fmt.Errorf("netrules: invalid forward of port %d: %d targets of %d", f.Port, len(f.Targets), f.Total)
		}
		match := "-m addrtype --dst-type LOCAL"
		if f.Dst.IsValid() {
			match = "-d " + f.Dst.String() + "/32"
		}
		for i, t := range f.Targets {
			if !t.Addr().Is4() {
				return fmt.Errorf("netrules: cannot forward port %d to %s: IPv4 only", f.Port, t)
			}
			// A loopback target is reached only from the host itself:
			// from outside, the kernel drops packets sent to 127/8
			// (unless route_localnet, which this leaves off). Another
			// target cannot answer a loopback client.
			src := "! -s 127.0.0.0/8"
			if t.Addr().IsLoopback() {
				src = "-m addrtype --src-type LOCAL"
			}
			// Rule i takes 1/(Total-i) of what the rules before it left:
			// each target gets 1/Total of the port's connections.
			share := ""
			if left := f.Total - i; left > 1 {
				share = fmt.Sprintf(" -m statistic --mode random --probability %.6f", 1/float64(left))
			}
			fmt.Fprintf(&b, "-A %s %s -p tcp --dport %d %s%s -j DNAT --to-destination %s\n", c, match, f.Port, src, share, t)
		}
	}
	b.WriteString("COMMIT\n")
	if _, err := r.run(b.String(), r.Bin+"-restore", "-w", "--noflush"); err != nil {
		return err
	}
	for _, j := range r.publishJumps() {
		if _, err := r.iptables(append([]string{"-C"}, j...)...); err == nil {
			continue
		}
		if _, err := r.iptables(append([]string{"-I", j[0], "1"}, j[1:]...)...); err != nil {
			return err
		}
	}
	return nil
}

// removeChain removes a chain of a table (run runs iptables on it) and
// the jumps to it; nothing to remove is not an error (r.mu held).
func (r *Rules) removeChain(run func(...string) (string, error), chain string, jumps [][]string) error {
	for _, j := range jumps {
		for range 10 { // each -D removes one jump
			if _, err := run(append([]string{"-D"}, j...)...); err != nil {
				break
			}
		}
	}
	out, err := run("-S")
	if err != nil {
		return err
	}
	if !strings.Contains(out+"\n", "-N "+chain+"\n") {
		return nil
	}
	if _, err := run("-F", chain); err != nil {
		return err
	}
	_, err = run("-X", chain)
	return err
}

// SetIn sets In, under the lock Publish holds (the mesh publishes while
// discovery changes bridges), and rewrites the published ports' chain
// when it holds forwards: this node's bridges skip it.
func (r *Rules) SetIn(in []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Equal(r.In, in) {
		return nil
	}
	r.In = in
	if len(r.forwards) == 0 {
		return nil
	}
	return r.writePublish()
}
