// Package netrules keeps the node's nat rules that send TCP for swarm
// networks' subnets to the routing mesh's capture port: one chain of
// flotilla's own in the nat table (Chain), jumped to from OUTPUT (host
// processes, process tasks) and PREROUTING (containers on engine
// bridges), with one REDIRECT rule per subnet. The subnets' addresses are
// configured on no interface: the redirect is what makes them answer.
//
// The rules are made by running iptables, so they sit next to the
// engine's own and show in iptables-save.
package netrules

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// Chain is flotilla's chain in the nat table.
const Chain = "FLOTILLA-CAPTURE"

// NodeChain is the chain of a node whose ID is given, for nodes that
// share one network namespace (iptables allows 28 characters).
func NodeChain(nodeID string) string {
	if len(nodeID) > 12 {
		nodeID = nodeID[:12]
	}
	return "FLOTILLA-" + nodeID
}

// hooks are the built-in chains that jump to Chain: OUTPUT for
// connections made on the node, PREROUTING for those routed in from a
// bridge.
var hooks = []string{"OUTPUT", "PREROUTING"}

// Rules manages Chain with one iptables command.
type Rules struct {
	// Bin is the iptables command; Detect chooses one.
	Bin string
	// Name is the chain's name (default Chain): nodes that share one
	// network namespace (the sandbox, tests) each keep their own.
	Name string
	// In are the interfaces whose incoming packets PREROUTING sends to
	// the chain (iptables -i syntax: "br-+" for a prefix, "+" for any),
	// one jump each; nil is none (only the node's own connections are
	// captured). Any interface would let a host that routes a swarm
	// subnet to this node reach its services.
	In []string
	// Forgot, when set, hears how many connections' conntrack entries
	// Publish deleted because their target left (forget.go), and why it
	// could not.
	Forgot func(n int, err error)

	mu           sync.Mutex
	forwards     []Forward // what Publish was given last
	betweenOn    bool      // the kernel path between nodes has rules (between.go)
	betweenShape string    // which of its chains the last Publish declared
	jumpKey      string    // the jumps last made sure of (ensureJumps)
	jumpAt       time.Time // when
}

// Detect chooses the iptables command. REDIRECT from either backend
// takes effect for both local processes and bridged containers (the
// kernel runs the legacy and the nf_tables nat hooks alike, and the
// first to set up a translation wins; netrules_test shows both), so the
// choice is about one place to look: the backend the engine writes to.
// Docker uses iptables-legacy on hosts where its nat table is already
// loaded, as on this project's machines, while "iptables" may be the
// nf_tables one; so iptables-legacy when the kernel lists a legacy nat
// table (/proc/net/ip_tables_names, read without loading anything), and
// the distribution's iptables otherwise.
func Detect() (string, error) {
	if b, err := os.ReadFile("/proc/net/ip_tables_names"); err == nil {
		for _, t := range strings.Fields(string(b)) {
			if t == "nat" {
				if _, err := exec.LookPath("iptables-legacy"); err == nil {
					return "iptables-legacy", nil
				}
			}
		}
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return "", errors.New("netrules: iptables not found in PATH: install iptables (the node redirects swarm networks' traffic to its mesh with it)")
	}
	return "iptables", nil
}

// Apply makes Chain hold exactly one REDIRECT to port per subnet, and
// makes OUTPUT and PREROUTING jump to it. Running it again with the same
// arguments changes nothing. The chain is rewritten in one
// iptables-restore, so no connection meets it half done; connections
// already redirected keep their translation.
func (r *Rules) Apply(subnets []netip.Prefix, port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("netrules: capture port %d out of range", port)
	}
	var b strings.Builder
	chain := r.chain()
	b.WriteString("*nat\n:" + chain + " - [0:0]\n")
	seen := map[netip.Prefix]bool{}
	for _, p := range subnets {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("netrules: cannot capture %s: only IPv4 subnets are captured (IPv6 needs ip6tables, not done)", p)
		}
		p = p.Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		fmt.Fprintf(&b, "-A %s -d %s -p tcp -j REDIRECT --to-ports %d\n", chain, p, port)
	}
	b.WriteString("COMMIT\n")
	r.mu.Lock()
	defer r.mu.Unlock()
	// --noflush keeps the other chains; a chain declared in the input is
	// flushed and refilled (and made if missing), atomically.
	if _, err := r.run(b.String(), r.Bin+"-restore", "-w", "--noflush"); err != nil {
		return err
	}
	for _, hook := range hooks {
		if err := r.jump(hook); err != nil {
			return err
		}
	}
	return nil
}

// chain is the chain's name.
func (r *Rules) chain() string {
	if r.Name != "" {
		return r.Name
	}
	return Chain
}

// jumpSpecs are the rules in hook that jump to the chain.
func (r *Rules) jumpSpecs(hook string) [][]string {
	if hook != "PREROUTING" {
		return [][]string{{hook, "-j", r.chain()}}
	}
	var out [][]string
	for _, in := range r.In {
		out = append(out, []string{hook, "-i", in, "-j", r.chain()})
	}
	return out
}

// jump makes hook jump to the chain exactly as jumpSpecs says, first
// (before the engine's rules: these subnets are flotilla's), removing
// jumps of another shape (In changed).
func (r *Rules) jump(hook string) error {
	jumps, err := r.jumps(hook)
	if err != nil {
		return err
	}
	want := r.jumpSpecs(hook)
	key := func(js [][]string) []string {
		var out []string
		for _, j := range js {
			out = append(out, strings.Join(j, " "))
		}
		slices.Sort(out)
		return out
	}
	if slices.Equal(key(jumps), key(want)) {
		return nil
	}
	for _, j := range jumps {
		if _, err := r.iptables(append([]string{"-D"}, j...)...); err != nil {
			return err
		}
	}
	for _, w := range want {
		if _, err := r.iptables(append([]string{"-I", hook, "1"}, w[1:]...)...); err != nil {
			return err
		}
	}
	return nil
}

// jumps are hook's rules that jump to Chain, as -S prints them without
// "-A" (so "-D" deletes them).
func (r *Rules) jumps(hook string) ([][]string, error) {
	out, err := r.iptables("-S", hook)
	if err != nil {
		return nil, err
	}
	var js [][]string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "-A" && f[len(f)-2] == "-j" && f[len(f)-1] == r.chain() {
			js = append(js, f[1:])
		}
	}
	return js, nil
}

// Remove takes every chain of the node and their jumps away (the node
// leaves the cluster).
// Nothing to remove is not an error.
func (r *Rules) Remove() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.removeCapture(); err != nil {
		return err
	}
	r.jumpKey = ""
	if err := r.removeChain(r.iptables, r.publishChain(), r.publishJumps()); err != nil {
		return err
	}
	return r.removeBetween()
}

// RemoveCapture takes the capture chain, its jumps and the isolation
// chain away, and leaves the published ports' kernel path (Publish).
func (r *Rules) RemoveCapture() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removeCapture()
}

// removeCapture is RemoveCapture with r.mu held.
func (r *Rules) removeCapture() error {
	if err := r.removeIsolation(); err != nil {
		return err
	}
	for _, hook := range hooks {
		jumps, err := r.jumps(hook)
		if err != nil {
			return err
		}
		for _, j := range jumps {
			if _, err := r.iptables(append([]string{"-D"}, j...)...); err != nil {
				return err
			}
		}
	}
	out, err := r.iptables("-S")
	if err != nil {
		return err
	}
	if !strings.Contains(out+"\n", "-N "+r.chain()+"\n") {
		return nil
	}
	if _, err := r.iptables("-F", r.chain()); err != nil {
		return err
	}
	_, err = r.iptables("-X", r.chain())
	return err
}

// iptables runs Bin on the nat table.
func (r *Rules) iptables(args ...string) (string, error) {
	return r.run("", r.Bin, append([]string{"-w", "-t", "nat"}, args...)...)
}

// run runs an iptables command, with stdin when given, and says what to
// do when it fails.
func (r *Rules) run(stdin, bin string, args ...string) (string, error) {
	if r.Bin == "" {
		return "", errors.New("netrules: no iptables command set (see Detect)")
	}
	cmd := exec.Command(bin, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	what := bin + " " + strings.Join(args, " ")
	if errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("netrules: %s not found in PATH: install iptables (the node redirects swarm networks' traffic to its mesh with it)", bin)
	}
	msg := strings.TrimSpace(stderr.String())
	if os.Geteuid() != 0 || strings.Contains(msg, "Permission denied") {
		return "", fmt.Errorf("netrules: %s: %s (%v): run the node as root, or with CAP_NET_ADMIN", what, msg, err)
	}
	return "", fmt.Errorf("netrules: %s: %s (%v)", what, msg, err)
}
