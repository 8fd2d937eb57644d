package netrules

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Published ports take a kernel path to the node's own tasks: a nat chain
// of DNAT rules (the node's chain name + "-P"), jumped to from OUTPUT and
// PREROUTING, sends a share of a published port's new connections
// straight to a task of this node, so their bytes never pass through the
// user-space mesh. The rest fall through to the mesh's listener, which
// takes them to the tasks on other nodes. DNAT keeps the client's
// address, and conntrack keeps each connection on its task.

// Forward is one published port's kernel path: the tasks of this node
// that take new connections, and with the kernel path between nodes the
// other nodes' tasks, each an equal share of Total, the number of tasks
// the port is balanced over on every node.
type Forward struct {
	Port uint16
	// Dst is the node's address the port is published on; the zero Addr
	// is any address of the host (the node listens on all of them).
	Dst     netip.Addr
	Targets []netip.AddrPort
	// Remote are other nodes' tasks, one entry per task: the address of
	// its node, which takes the connection to its own tasks (between.go).
	Remote []netip.Addr
	// Src is the address connections sent to Remote come from (this
	// node's cluster address), so replies return through this node; the
	// zero Addr masquerades.
	Src netip.Addr
	// Peers are the other nodes: connections from them to this port go
	// to Targets only, since their own rules already chose this node.
	Peers []netip.Addr
	// Localnet lets loopback Targets take connections from other hosts
	// too: route_localnet is turned on, behind a guard (between.go).
	Localnet bool
	Total    int
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
	old := r.forwards
	r.forwards = fs
	if len(fs) == 0 {
		r.jumpKey = ""
		// The published chain first: it jumps to the peers' chain.
		if err := r.removeChain(r.iptables, r.publishChain(), r.publishJumps()); err != nil || !r.betweenOn {
			return err
		}
		return r.removeBetween()
	}
	if err := r.writePublish(); err != nil {
		return err
	}
	// A failure here leaves connections as they were: not the rules'.
	if n, err := forgetGone(old, fs); (err != nil || n > 0) && r.Forgot != nil {
		r.Forgot(n, err)
	}
	return nil
}

// writePublish writes r.forwards (r.mu held). The bridges of In, this
// node's own, skip the chain as the engine's do.
func (r *Rules) writePublish() error {
	c := r.publishChain()
	var b strings.Builder
	bt := r.between(r.forwards)
	b.WriteString("*nat\n:" + c + " - [0:0]\n")
	bt.declare(&b)
	for _, in := range append(slices.Clone(skipIn), r.In...) {
		if in != "+" {
			fmt.Fprintf(&b, "-A %s -i %s -j RETURN\n", c, in)
		}
	}
	for _, f := range r.forwards {
		if n := len(f.Targets) + len(f.Remote); f.Port == 0 || n == 0 || f.Total < n {
			return fmt.Errorf("netrules: invalid forward of port %d: %d targets of %d", f.Port, n, f.Total)
		}
		match := "-m addrtype --dst-type LOCAL"
		if f.Dst.IsValid() {
			match = "-d " + f.Dst.String() + "/32"
		}
		if err := bt.fromPeers(&b, c, f); err != nil {
			return err
		}
		for i, t := range f.Targets {
			if !t.Addr().Is4() {
				return fmt.Errorf("netrules: cannot forward port %d to %s: IPv4 only", f.Port, t)
			}
			// A loopback target is reached only from the host itself:
			// from outside, the kernel drops packets sent to 127/8
			// unless route_localnet, which only Localnet turns on.
			// Another target cannot answer a loopback client.
			src := "! -s 127.0.0.0/8"
			switch {
			case t.Addr().IsLoopback() && f.Localnet:
				src = "" // from anywhere: route_localnet
			case t.Addr().IsLoopback():
				src = "-m addrtype --src-type LOCAL"
			}
			fmt.Fprintf(&b, "-A %s %s -p tcp --dport %d%s%s -j DNAT --to-destination %s\n", c, match, f.Port, prefixed(src), shareOf(f.Total-i), t)
		}
		bt.toRemote(&b, c, match, f)
	}
	bt.rest(&b)
	b.WriteString("COMMIT\n")
	bt.filterTable(&b)
	if err := bt.prepare(); err != nil {
		return err
	}
	// One restore for both tables: the new rules take effect at once
	// (a task that died is out of them before anything else is done).
	if _, err := r.run(b.String(), r.Bin+"-restore", "-w", "--noflush"); err != nil {
		return err
	}
	if err := bt.tidy(); err != nil {
		return err
	}
	return r.ensureJumps(append(r.publishJumpRules(), bt.jumps()...))
}

// jumpRule is a rule of a built-in chain that jumps to one of ours; its
// hook "" stands for isolateHook's (DOCKER-USER or FORWARD).
type jumpRule struct {
	table string
	rule  []string
}

// jumpRecheck is how often jumps known to be there are looked for again
// (the engine may rewrite its chains when it restarts): each look is an
// iptables run, which a rule change should not wait for.
const jumpRecheck = 10 * time.Second

// ensureJumps makes each jump exist, first in its chain (r.mu held).
func (r *Rules) ensureJumps(js []jumpRule) error {
	key := fmt.Sprint(js)
	if key == r.jumpKey && time.Since(r.jumpAt) < jumpRecheck {
		return nil
	}
	for _, j := range js {
		run := r.iptables
		if j.table == "filter" {
			run = r.filter
		}
		rule := j.rule
		if rule[0] == "" {
			rule = append([]string{r.isolateHook()}, rule[1:]...)
		}
		if _, err := run(append([]string{"-C"}, rule...)...); err == nil {
			continue
		}
		if _, err := run(append([]string{"-I", rule[0], "1"}, rule[1:]...)...); err != nil {
			return err
		}
	}
	r.jumpKey, r.jumpAt = key, time.Now()
	return nil
}

// publishJumpRules are publishJumps as jumpRules.
func (r *Rules) publishJumpRules() []jumpRule {
	var out []jumpRule
	for _, j := range r.publishJumps() {
		out = append(out, jumpRule{"nat", j})
	}
	return out
}

// prefixed is s after a space, or nothing.
func prefixed(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

// shareOf is the match that takes 1/left of what the rules before it
// left: rule i of a port gets 1/(Total-i), so each target gets 1/Total
// of the port's connections.
func shareOf(left int) string {
	if left <= 1 {
		return ""
	}
	return fmt.Sprintf(" -m statistic --mode random --probability %.6f", 1/float64(left))
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
