package netrules

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// The kernel path between nodes (opt-in, plain text, as Docker's ingress
// overlay is by default): a published port's share for another node's
// tasks is sent by DNAT to that node's address and the same port, with
// SNAT to this node's address so replies come back through it. The other
// node knows the connection was already balanced by its source, one of
// the cluster's nodes (Forward.Peers): a rule of its chain F marks it,
// and marked connections go to its own tasks only, never on again.
//
// Process tasks listen on loopback, so a node that takes connections from
// peers to them turns route_localnet on, with kube-proxy's guard: a
// packet from outside to 127/8 that no rule of ours DNAT'd is dropped
// (CVE-2020-8558). A node that sends to peers needs ip_forward for its
// clients from other hosts, and an ACCEPT in FORWARD where the engine's
// policy drops.

// peerMark is the packet mark of a connection from a peer node, set and
// read in the nat table on its first packet only.
const peerMark = "0x100000/0x100000"

// betweenRules are the rules of one Publish that concern other nodes.
type betweenRules struct {
	r        *Rules
	peers    []netip.Addr // every port's Peers, once each, sorted
	snat     []string     // rules of chain S
	ports    []uint16     // ports whose connections may be forwarded
	forward  bool         // some share goes to another node
	localnet bool         // other hosts' connections go to a loopback task
}

func (r *Rules) peerChain() string   { return r.publishChain() + "F" }
func (r *Rules) snatChain() string   { return r.publishChain() + "S" }
func (r *Rules) acceptChain() string { return r.publishChain() + "A" }
func (r *Rules) guardChain() string  { return r.publishChain() + "G" }
func (r *Rules) snatJump() []string  { return []string{"POSTROUTING", "-j", r.snatChain()} }
func (r *Rules) guardJump() []string { return []string{"INPUT", "-j", r.guardChain()} }
func (b *betweenRules) used() bool   { return len(b.peers) > 0 || b.forward || b.localnet }
func (r *Rules) acceptJumps() [][]string {
	c := r.acceptChain()
	return [][]string{{"DOCKER-USER", "-j", c}, {"FORWARD", "-j", c}}
}

// between gathers what fs asks of other nodes. A loopback address is
// never a peer nor a remote target: nodes on loopback share one host and
// one nat table, where a connection is translated once.
func (r *Rules) between(fs []Forward) *betweenRules {
	b := &betweenRules{r: r}
	for _, f := range fs {
		if len(f.Targets) > 0 {
			for _, p := range f.Peers {
				if p.Is4() && !p.IsLoopback() && !slices.Contains(b.peers, p) {
					b.peers = append(b.peers, p)
				}
			}
		}
	}
	slices.SortFunc(b.peers, netip.Addr.Compare)
	for _, f := range fs {
		for _, n := range f.Remote {
			b.forward = b.forward || (n.Is4() && !n.IsLoopback())
		}
		for _, t := range f.Targets {
			b.localnet = b.localnet || (f.Localnet && t.Addr().IsLoopback())
		}
	}
	return b
}

// declare declares the nat chains used (restore flushes them).
func (b *betweenRules) declare(w *strings.Builder) {
	if len(b.peers) > 0 {
		w.WriteString(":" + b.r.peerChain() + " - [0:0]\n")
	}
	if b.forward {
		w.WriteString(":" + b.r.snatChain() + " - [0:0]\n")
	}
}

// fromPeers writes, before f's shares, the rules that send f's
// connections from peer nodes to this node's tasks only.
func (b *betweenRules) fromPeers(w *strings.Builder, c string, f Forward) error {
	if len(b.peers) == 0 || len(f.Targets) == 0 || len(f.Peers) == 0 {
		return nil
	}
	for _, t := range f.Targets {
		if t.Addr().IsLoopback() && !f.Localnet {
			return nil // unreachable from peers: their connections take the shares
		}
	}
	// Any local address: a peer sends to this node's cluster address,
	// which may not be the one published ports listen on.
	match := fmt.Sprintf("-m addrtype --dst-type LOCAL -p tcp --dport %d", f.Port)
	fmt.Fprintf(w, "-A %s %s -j %s\n", c, match, b.r.peerChain())
	for i, t := range f.Targets {
		if !t.Addr().Is4() {
			return fmt.Errorf("netrules: cannot forward port %d to %s: IPv4 only", f.Port, t)
		}
		fmt.Fprintf(w, "-A %s %s -m mark --mark %s%s -j DNAT --to-destination %s\n", c, match, peerMark, shareOf(len(f.Targets)-i), t)
	}
	b.ports = append(b.ports, f.Port)
	return nil
}

// toRemote writes f's shares for other nodes' tasks, after its own.
func (b *betweenRules) toRemote(w *strings.Builder, c, match string, f Forward) {
	var sent []netip.Addr
	for j, n := range f.Remote {
		if !n.Is4() || n.IsLoopback() {
			continue
		}
		i := len(f.Targets) + j
		// A loopback client's packets cannot leave the host.
		fmt.Fprintf(w, "-A %s %s -p tcp --dport %d ! -s 127.0.0.0/8%s -j DNAT --to-destination %s\n",
			c, match, f.Port, shareOf(f.Total-i), netip.AddrPortFrom(n, f.Port))
		if !slices.Contains(sent, n) {
			sent = append(sent, n)
			to := "-j MASQUERADE"
			if f.Src.IsValid() {
				to = "-j SNAT --to-source " + f.Src.String()
			}
			b.snat = append(b.snat, fmt.Sprintf("-d %s/32 -p tcp --dport %d -m conntrack --ctstate DNAT %s", n, f.Port, to))
		}
	}
	if len(sent) > 0 && !slices.Contains(b.ports, f.Port) {
		b.ports = append(b.ports, f.Port)
	}
}

// rest writes the peer and SNAT chains' rules.
func (b *betweenRules) rest(w *strings.Builder) {
	for _, p := range b.peers {
		fmt.Fprintf(w, "-A %s -s %s/32 -j MARK --set-xmark %s\n", b.r.peerChain(), p, peerMark)
	}
	for _, s := range b.snat {
		fmt.Fprintf(w, "-A %s %s\n", b.r.snatChain(), s)
	}
}

// prepare sets the kernel's switches the rules need, before they exist.
func (b *betweenRules) prepare() error {
	if b.forward {
		if err := sysctlOn("net/ipv4/ip_forward"); err != nil {
			return err
		}
	}
	if b.localnet {
		return sysctlOn("net/ipv4/conf/all/route_localnet")
	}
	return nil
}

// filterTable writes the filter chains, when anything goes between
// nodes.
func (b *betweenRules) filterTable(w *strings.Builder) {
	if !b.used() {
		return
	}
	r := b.r
	w.WriteString("*filter\n:" + r.acceptChain() + " - [0:0]\n:" + r.guardChain() + " - [0:0]\n")
	for _, p := range b.ports {
		fmt.Fprintf(w, "-A %s -p tcp -m conntrack --ctstate DNAT --ctorigdstport %d -j ACCEPT\n", r.acceptChain(), p)
	}
	if b.localnet {
		fmt.Fprintf(w, "-A %s -d 127.0.0.0/8 ! -i lo -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n", r.guardChain())
	}
	w.WriteString("COMMIT\n")
}

// jumps are the jumps to the chains of the kernel path between nodes.
func (b *betweenRules) jumps() []jumpRule {
	if !b.used() {
		return nil
	}
	js := []jumpRule{{"filter", b.r.guardJump()}, {"filter", []string{"", "-j", b.r.acceptChain()}}}
	if b.forward {
		js = append(js, jumpRule{"nat", b.r.snatJump()})
	}
	return js
}

// tidy removes the chains an earlier Publish made and this one did not
// declare (r.mu held): the published chain no longer jumps to them.
func (b *betweenRules) tidy() error {
	r := b.r
	if !b.used() {
		if !r.betweenOn {
			return nil
		}
		r.jumpKey = "" // the jumps to check change
		return r.removeBetween()
	}
	r.betweenOn = true
	shape := fmt.Sprint(b.forward, len(b.peers) > 0)
	if shape == r.betweenShape {
		return nil
	}
	r.betweenShape, r.jumpKey = shape, ""
	if !b.forward {
		if err := r.removeChain(r.iptables, r.snatChain(), [][]string{r.snatJump()}); err != nil {
			return err
		}
	}
	if len(b.peers) == 0 {
		return r.removeChain(r.iptables, r.peerChain(), nil)
	}
	return nil
}

// removeBetween removes the chains of the kernel path between nodes and
// their jumps; nothing to remove is not an error (r.mu held). The
// sysctls stay as they are: other software may rely on them by now.
func (r *Rules) removeBetween() error {
	steps := []struct {
		run   func(...string) (string, error)
		chain string
		jumps [][]string
	}{
		{r.iptables, r.snatChain(), [][]string{r.snatJump()}},
		{r.iptables, r.peerChain(), nil},
		{r.filter, r.acceptChain(), r.acceptJumps()},
		{r.filter, r.guardChain(), [][]string{r.guardJump()}},
	}
	for _, s := range steps {
		if err := r.removeChain(s.run, s.chain, s.jumps); err != nil {
			return err
		}
	}
	r.betweenOn, r.betweenShape = false, ""
	return nil
}

// sysctlOn sets a switch of /proc/sys to 1 unless it is already.
func sysctlOn(name string) error {
	p := "/proc/sys/" + name
	b, err := os.ReadFile(p)
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("netrules: cannot turn %s on for the kernel path between nodes: %w (run as root, or leave --mesh-kernel-between-nodes off)", strings.ReplaceAll(name, "/", "."), err)
	}
	return nil
}
