package netrules_test

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/agent/netrules"
)

// testPublish is run by TestCaptureInner in the node namespace, where
// 192.0.2.1 and 10.200.0.1 are the node's addresses and 10.200.0.2 a
// container's, behind flt-v0. It checks the published ports' kernel
// path: connections reach the targets with the client's own address,
// share a port with the mesh's listener, and skip what they must.
func testPublish(t *testing.T, r *netrules.Rules, fromNode, fromCtr func(string) (string, error), listing func() string) {
	// A "task" answers with the client address it sees, in the shape
	// fromCtr looks for.
	serve := func(name, addr string) netip.AddrPort {
		t.Helper()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "dst=%s from=%s\n", name, c.RemoteAddr().(*net.TCPAddr).IP)
				c.Close()
			}
		}()
		return ln.Addr().(*net.TCPAddr).AddrPort()
	}
	answer := func(dial func(string) (string, error), addr, want string) {
		t.Helper()
		line, err := dial(addr)
		line, _, _ = strings.Cut(line, "\n")
		if err != nil || line != want {
			t.Fatalf("dial %s: %q, %v; want %q", addr, line, err, want)
		}
	}
	proc := serve("proc", "127.0.0.1:0")
	ctr := serve("ctr", "10.200.0.1:0")
	serve("mesh", "192.0.2.1:8092")
	node := netip.MustParseAddr("192.0.2.1")

	r.In = nil
	err := r.Publish([]netrules.Forward{
		{Port: 8090, Dst: node, Targets: []netip.AddrPort{proc}, Total: 1},
		{Port: 8091, Targets: []netip.AddrPort{ctr}, Total: 1},
		{Port: 8092, Dst: node, Targets: []netip.AddrPort{proc}, Total: 2},
		{Port: 8093, Targets: []netip.AddrPort{proc}, Total: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after Publish:\n%s", listing())
	// A process task, from the node, keeps the client's address.
	answer(fromNode, "192.0.2.1:8090", "dst=proc from=192.0.2.1")
	// A container task, from another host (PREROUTING): the client's
	// own address too, where a NAT would show the node's.
	answer(fromCtr, "10.200.0.1:8091", "dst=ctr from=10.200.0.2")
	// A loopback target is not reachable from outside: not forwarded.
	if line, err := fromCtr("10.200.0.1:8093"); err == nil {
		t.Fatalf("a loopback target was forwarded to from outside: %q", line)
	}
	// One target of two: the kernel takes about half, the mesh's
	// listener the rest.
	seen := map[string]int{}
	for range 40 {
		line, err := fromNode("192.0.2.1:8092")
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.Fields(line)[0]]++
	}
	if seen["dst=proc"] == 0 || seen["dst=mesh"] == 0 {
		t.Fatalf("one target of two: %v, want both the target and the listener", seen)
	}

	// This node's bridges skip the chain: flt-v0 stands for one.
	if err := r.SetIn([]string{"flt-v0"}); err != nil {
		t.Fatal(err)
	}
	if line, err := fromCtr("10.200.0.1:8091"); err == nil {
		t.Fatalf("a connection from the node's bridge was forwarded: %q", line)
	}
	answer(fromNode, "192.0.2.1:8090", "dst=proc from=192.0.2.1")

	// The capture rules go without the published ports' chain.
	if err := r.RemoveCapture(); err != nil {
		t.Fatal(err)
	}
	if l := listing(); strings.Contains(l, "-N "+r.Name+"\n") || !strings.Contains(l, "-N "+r.Name+"-P") {
		t.Fatalf("after RemoveCapture:\n%s", l)
	}
	answer(fromNode, "192.0.2.1:8090", "dst=proc from=192.0.2.1")
	// No forward left: the chain and its jumps go; the listener answers.
	if err := r.Publish(nil); err != nil {
		t.Fatal(err)
	}
	if l := listing(); strings.Contains(l, r.Name) {
		t.Fatalf("Publish(nil) left:\n%s", l)
	}
	answer(fromNode, "192.0.2.1:8092", "dst=mesh from=192.0.2.1")

	// A loopback target for other hosts too (Localnet), with no peer and
	// nothing sent on: route_localnet goes on, and never without the
	// guard that drops what no rule of ours translated.
	if err := r.SetIn(nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Publish([]netrules.Forward{{Port: 8093, Targets: []netip.AddrPort{proc}, Total: 1, Localnet: true}}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(r.Bin, "-w", "-t", "filter", "-S").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "-A INPUT -j "+r.Name+"-PG") || !strings.Contains(string(out), "-d 127.0.0.0/8 ! -i lo") {
		t.Fatalf("route_localnet without its guard (%v):\n%s", err, out)
	}
	answer(fromCtr, "10.200.0.1:8093", "dst=proc from=10.200.0.2")
	if err := r.Publish(nil); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(r.Bin, "-w", "-t", "filter", "-S").CombinedOutput(); strings.Contains(string(out), r.Name) {
		t.Fatalf("Publish(nil) left filter rules:\n%s", out)
	}

	if err := r.Publish([]netrules.Forward{{Port: 1, Targets: []netip.AddrPort{proc}, Total: 0}}); err == nil {
		t.Fatal("Publish took more targets than its total")
	}
	r.In = nil
	if err := r.Publish([]netrules.Forward{{Port: 8090, Dst: node, Targets: []netip.AddrPort{proc}, Total: 1}}); err != nil {
		t.Fatal(err)
	}
}
