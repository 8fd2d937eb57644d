package netrules

import (
	"fmt"
	"strings"
)

// Internal networks (network create --internal) reach nothing outside
// the cluster: their bridges' traffic that the node would route (FORWARD)
// is dropped, both ways. What the node itself serves stays reachable:
// connections captured to the mesh and DNS queries to the bridge's
// gateway are the node's own input, not forwarded traffic.

// isolateChain is the filter chain that drops internal bridges' routed
// traffic.
func (r *Rules) isolateChain() string { return r.chain() + "-I" }

// isolateHooks are where the chain is jumped to from: Docker's
// DOCKER-USER, which the engine keeps first in FORWARD, where it exists
// (a jump put first in FORWARD itself would end up behind the engine's
// own ACCEPT rules when the engine restarts); FORWARD otherwise.
func (r *Rules) isolateHook() string {
	if _, err := r.filter("-S", "DOCKER-USER"); err == nil {
		return "DOCKER-USER"
	}
	return "FORWARD"
}

// Isolate drops the routed traffic of the bridges named (none removes
// the chain). Running it again with the same bridges changes nothing.
func (r *Rules) Isolate(ifaces []string) error {
	if len(ifaces) == 0 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.removeIsolation()
	}
	chain := r.isolateChain()
	var b strings.Builder
	b.WriteString("*filter\n:" + chain + " - [0:0]\n")
	for _, in := range ifaces {
		fmt.Fprintf(&b, "-A %s -i %s -j DROP\n-A %s -o %s -j DROP\n", chain, in, chain, in)
	}
	b.WriteString("COMMIT\n")
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.run(b.String(), r.Bin+"-restore", "-w", "--noflush"); err != nil {
		return err
	}
	hook := r.isolateHook()
	if _, err := r.filter("-C", hook, "-j", chain); err == nil {
		return nil
	}
	_, err := r.filter("-I", hook, "1", "-j", chain)
	return err
}

// removeIsolation removes the chain and its jumps (r.mu held).
func (r *Rules) removeIsolation() error {
	c := r.isolateChain()
	return r.removeChain(r.filter, c, [][]string{{"DOCKER-USER", "-j", c}, {"FORWARD", "-j", c}})
}

// filter runs Bin on the filter table.
func (r *Rules) filter(args ...string) (string, error) {
	return r.run("", r.Bin, append([]string{"-w", "-t", "filter"}, args...)...)
}
