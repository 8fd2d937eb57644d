package netrules_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/mesh"
	"github.com/flotilla-org/flotilla/agent/netrules"
)

// The capture test needs its own network namespaces: the outer half
// (TestCaptureInNamespace) makes a "node" namespace and a "container" one
// joined by a veth pair, and re-runs this test binary inside the node
// namespace for the inner half (TestCaptureInner), which applies the
// rules and dials. A Go process cannot move itself into a namespace
// safely (its threads would straddle two), so each half is a process.
const (
	envInner  = "FLOTILLA_NETRULES_INNER"  // the iptables command: this is the inner half
	envMixed  = "FLOTILLA_NETRULES_MIXED"  // add Docker-like rules to the legacy nat table first
	envCtr    = "FLOTILLA_NETRULES_CTR"    // the container namespace
	envRootNS = "FLOTILLA_NETRULES_ROOTNS" // the outer half's namespace, which must not be touched
	envDial   = "FLOTILLA_NETRULES_DIAL"   // TestCaptureDial's address
)

func TestCaptureInNamespace(t *testing.T) {
	if os.Getenv(envInner) != "" || os.Getenv(envDial) != "" {
		t.Skip("runs from the root namespace only")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: it makes network namespaces and nat rules in them")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to make network namespaces")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rootNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, bin, mixed string }{
		{"legacy", "iptables-legacy", ""},
		{"nft", "iptables-nft", ""},
		// Our rules in nf_tables while the engine's are in the legacy
		// tables, as on a host where "iptables" is the nf_tables one.
		{"nft-with-legacy-docker", "iptables-nft", "1"},
	}
	ran := false
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, b := range []string{c.bin, c.bin + "-restore", "iptables-legacy"} {
				if _, err := exec.LookPath(b); err != nil {
					t.Skipf("needs %s", b)
				}
			}
			ran = true
			node := fmt.Sprintf("flt-node-%d-%d", os.Getpid(), i)
			ctr := fmt.Sprintf("flt-ctr-%d-%d", os.Getpid(), i)
			for _, ns := range []string{node, ctr} {
				ipCmd(t, "netns", "add", ns)
				t.Cleanup(func() {
					if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
						t.Errorf("ip netns del %s: %v: %s", ns, err, out)
					}
				})
			}
			// The container reaches the node through the veth pair, as
			// through an engine bridge; the node's default route goes to an
			// uplink that leads nowhere, so swarm subnets are routable but on no
			// interface (like a host's default route). (A veth pair stands
			// for the uplink: the dummy module may be missing.)
			ipCmd(t, "-n", node, "link", "add", "flt-v0", "type", "veth", "peer", "name", "flt-v1", "netns", ctr)
			for _, args := range [][]string{
				{"-n", node, "link", "set", "lo", "up"},
				{"-n", node, "addr", "add", "10.200.0.1/24", "dev", "flt-v0"},
				{"-n", node, "link", "set", "flt-v0", "up"},
				{"-n", node, "link", "add", "flt-d0", "type", "veth", "peer", "name", "flt-d1"},
				{"-n", node, "link", "set", "flt-d1", "up"},
				{"-n", node, "addr", "add", "192.0.2.1/24", "dev", "flt-d0"},
				{"-n", node, "link", "set", "flt-d0", "up"},
				{"-n", node, "route", "add", "default", "dev", "flt-d0"},
				{"-n", ctr, "link", "set", "lo", "up"},
				{"-n", ctr, "addr", "add", "10.200.0.2/24", "dev", "flt-v1"},
				{"-n", ctr, "link", "set", "flt-v1", "up"},
				{"-n", ctr, "route", "add", "default", "via", "10.200.0.1"},
			} {
				ipCmd(t, args...)
			}
			cmd := exec.Command("ip", "netns", "exec", node, exe, "-test.run=^TestCaptureInner$", "-test.v", "-test.count=1")
			cmd.Env = childEnv(envInner+"="+c.bin, envMixed+"="+c.mixed, envCtr+"="+ctr, envRootNS+"="+rootNS)
			out, err := cmd.CombinedOutput()
			t.Logf("inner half:\n%s", out)
			if err != nil || !strings.Contains(string(out), "--- PASS: TestCaptureInner") {
				t.Fatalf("inner half failed: %v", err)
			}
		})
	}
	if !ran {
		t.Skip("needs iptables-legacy and iptables-nft")
	}
}

// childEnv is the environment of a half run in a namespace. The race
// detector waits a second as a process exits, unless told not to.
func childEnv(vars ...string) []string {
	return append(os.Environ(), append(vars, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")...)
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// TestCaptureInner is the inner half of TestCaptureInNamespace: it runs
// in the node namespace.
func TestCaptureInner(t *testing.T) {
	bin := os.Getenv(envInner)
	if bin == "" {
		t.Skip("the inner half of TestCaptureInNamespace, run by it inside a network namespace")
	}
	// Never touch the root namespace's rules, whatever ran us.
	if ns, err := os.Readlink("/proc/self/ns/net"); err != nil || ns == os.Getenv(envRootNS) {
		t.Fatalf("not in a namespace of its own (%s, %v): refusing to change nat rules", ns, err)
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// What leaves for the outside world is refused at once, so a
	// connection that is not captured fails fast instead of timing out.
	// (A redirected packet still matches -o flt-d0 here, the interface
	// it was routed to before nat; its new destination tells it apart.)
	run(bin, "-w", "-A", "OUTPUT", "-o", "flt-d0", "!", "-d", "127.0.0.0/8", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")
	if os.Getenv(envMixed) != "" {
		// As the engine's nat rules on this project's hosts.
		run("iptables-legacy", "-w", "-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "RETURN")
		run("iptables-legacy", "-w", "-t", "nat", "-A", "OUTPUT", "!", "-d", "127.0.0.0/8", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "RETURN")
		run("iptables-legacy", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "10.200.0.0/24", "!", "-o", "flt-v0", "-j", "MASQUERADE")
	}

	ln, err := mesh.ListenCapture(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	captured := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if errors.Is(err, mesh.ErrNoOriginalDst) {
				t.Errorf("accept: %v", err)
				continue
			}
			if err != nil {
				return
			}
			fmt.Fprintf(c.Conn, "dst=%s\n", c.Dst)
			c.Conn.Close()
			captured <- c.Dst
		}
	}()

	// fromNode dials as a process of the node (OUTPUT), fromCtr as a
	// container (PREROUTING); each returns the answer's line.
	fromNode := func(addr string) (string, error) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return bufio.NewReader(c).ReadString('\n')
	}
	fromCtr := func(addr string) (string, error) {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		cmd := exec.Command("ip", "netns", "exec", os.Getenv(envCtr), exe, "-test.run=^TestCaptureDial$", "-test.v", "-test.count=1")
		cmd.Env = childEnv(envInner+"=", envDial+"="+addr)
		out, err := cmd.CombinedOutput()
		if i := strings.Index(string(out), "dst="); i >= 0 {
			return string(out[i:]), nil
		}
		return "", fmt.Errorf("%v: %s", err, out)
	}
	expect := func(dial func(string) (string, error), addr string) {
		t.Helper()
		line, err := dial(addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		if !strings.HasPrefix(line, "dst="+addr+"\n") {
			t.Fatalf("dial %s: answered %q", addr, line)
		}
		select {
		case got := <-captured:
			if got.String() != addr {
				t.Fatalf("captured %s, want %s", got, addr)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("dial %s: the capture listener saw nothing", addr)
		}
	}
	refused := func(addr string) {
		t.Helper()
		_, err := fromNode(addr)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused (not captured)", addr, err)
		}
	}
	listing := func() string {
		t.Helper()
		return run(bin, "-w", "-t", "nat", "-S")
	}
	count := func(s, sub string) int { return strings.Count(s, sub) }

	// Its own chain name and two input interfaces (one absent): one
	// PREROUTING jump each.
	r := &netrules.Rules{Bin: bin, Name: "FLOTILLA-CAP-TEST", In: []string{"flt-v0", "flt-absent"}}
	refused("10.99.0.7:8080") // nothing captured yet
	pfx := func(s ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, p := range s {
			ps = append(ps, netip.MustParsePrefix(p))
		}
		return ps
	}
	if err := r.Apply(pfx("10.99.0.0/24", "10.98.0.0/24"), port); err != nil {
		t.Fatal(err)
	}
	first := listing()
	t.Logf("after Apply:\n%s", first)
	expect(fromNode, "10.99.0.7:8080")
	expect(fromNode, "10.99.0.9:443")
	expect(fromCtr, "10.99.0.9:443")
	expect(fromCtr, "10.98.0.3:5432")

	// Idempotent: the same rules, not more.
	if err := r.Apply(pfx("10.99.0.0/24", "10.98.0.0/24", "10.99.0.0/24"), port); err != nil {
		t.Fatal(err)
	}
	if again := listing(); again != first {
		t.Fatalf("second Apply changed the rules:\n%s\nwas:\n%s", again, first)
	}
	if n := count(first, "-j REDIRECT"); n != 2 {
		t.Fatalf("%d REDIRECT rules, want 2:\n%s", n, first)
	}
	if n := count(first, "-j "+r.Name); n != 3 {
		t.Fatalf("%d jumps to %s, want 3:\n%s", n, r.Name, first)
	}

	// A changed list: the old subnet's rule goes, the new one comes.
	if err := r.Apply(pfx("10.98.0.0/24", "10.97.0.0/16"), port); err != nil {
		t.Fatal(err)
	}
	changed := listing()
	t.Logf("after the second list:\n%s", changed)
	if strings.Contains(changed, "10.99.0.0/24") || count(changed, "-j REDIRECT") != 2 {
		t.Fatalf("rules after changing the list:\n%s", changed)
	}
	refused("10.99.0.7:8080")
	expect(fromNode, "10.97.1.5:22")
	expect(fromCtr, "10.98.0.3:5432")

	// Another input interface: the PREROUTING jump is replaced, not added.
	r.In = []string{"+"}
	if err := r.Apply(pfx("10.98.0.0/24", "10.97.0.0/16"), port); err != nil {
		t.Fatal(err)
	}
	if l := listing(); count(l, "-j "+r.Name) != 2 || strings.Contains(l, "-i flt-v0 -j "+r.Name) {
		t.Fatalf("jumps after changing In:\n%s", l)
	}
	expect(fromCtr, "10.98.0.3:5432")

	// No input interface: only the node's own connections are captured.
	r.In = nil
	if err := r.Apply(pfx("10.98.0.0/24"), port); err != nil {
		t.Fatal(err)
	}
	if l := listing(); count(l, "-j "+r.Name) != 1 || count(l, "-A OUTPUT -j "+r.Name) != 1 {
		t.Fatalf("jumps with no input interface:\n%s", l)
	}
	expect(fromNode, "10.98.0.3:5432")

	testPublish(t, r, fromNode, fromCtr, listing)

	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	if l := listing(); strings.Contains(l, "FLOTILLA") {
		t.Fatalf("Remove left:\n%s", l)
	}
	if err := r.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if err := (&netrules.Rules{Bin: bin}).Apply(pfx("fd00::/64"), port); err == nil {
		t.Fatal("Apply took an IPv6 subnet")
	}

	// Detect goes with the legacy tables once they hold nat rules.
	wantBin := "iptables"
	if bin == "iptables-legacy" || os.Getenv(envMixed) != "" {
		wantBin = "iptables-legacy"
	}
	if got, err := netrules.Detect(); got != wantBin || err != nil {
		t.Fatalf("Detect: %s, %v; want %s", got, err, wantBin)
	}

	// IPv6: Rules does not make these rules yet, but the listener reads
	// the original destination of a connection ip6tables redirected.
	ip6 := "ip6" + strings.TrimPrefix(bin, "ip")
	if _, err := exec.LookPath(ip6); err != nil {
		t.Logf("IPv6 not tried: %v", err)
		return
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/flt-d0/disable_ipv6"); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Logf("IPv6 not tried: it is disabled in the namespace")
		return
	}
	run("ip", "addr", "add", "fd00:1::1/64", "dev", "flt-d0", "nodad")
	run("ip", "-6", "route", "add", "default", "dev", "flt-d0")
	run(ip6, "-w", "-t", "nat", "-A", "OUTPUT", "-d", "fd00:99::/64", "-p", "tcp", "-j", "REDIRECT", "--to-ports", strconv.Itoa(port))
	expect(fromNode, "[fd00:99::7]:8080")
	t.Logf("IPv6: captured [fd00:99::7]:8080")
}

// TestCaptureDial is run by TestCaptureInner in the container namespace:
// it dials and prints the answer.
func TestCaptureDial(t *testing.T) {
	addr := os.Getenv(envDial)
	if addr == "" {
		t.Skip("run by TestCaptureInner inside a network namespace")
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	fmt.Print(line)
}

func TestApplyRefusesBadInput(t *testing.T) {
	r := &netrules.Rules{Bin: "iptables-never-run"}
	if err := r.Apply(nil, 0); err == nil || !strings.Contains(err.Error(), "port") {
		t.Fatalf("port 0: %v", err)
	}
	if err := r.Apply(nil, 70000); err == nil {
		t.Fatal("port 70000 accepted")
	}
	// Not found: the error says what to install.
	if err := r.Apply(nil, 5555); err == nil || !strings.Contains(err.Error(), "install iptables") {
		t.Fatalf("missing iptables: %v", err)
	}
}
