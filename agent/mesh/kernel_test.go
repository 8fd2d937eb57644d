package mesh

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/netrules"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// publisher records what the mesh asks the kernel for, and fails when
// told to.
type publisher struct {
	mu    sync.Mutex
	calls [][]netrules.Forward
	fail  error
}

func (p *publisher) Publish(fs []netrules.Forward) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, fs)
	return p.fail
}

// last is the last call and how many there were.
func (p *publisher) last() ([]netrules.Forward, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		return nil, 0
	}
	return p.calls[len(p.calls)-1], len(p.calls)
}

// waitCall waits, pass by pass of n's kernel loop, until the last call
// satisfies ok.
func (p *publisher) waitCall(t *testing.T, n *node, what string, ok func(fs []netrules.Forward) bool) {
	t.Helper()
	waitPass(t, n, what, func() bool {
		fs, calls := p.last()
		return calls > 0 && ok(fs)
	})
}

// The kernel is given this node's tasks, each an equal share of all the
// port's tasks; the listener then takes the rest to the other nodes.
func TestKernelPathTakesLocalShare(t *testing.T) {
	pub := &publisher{}
	a, b := newKernelNode(t, "A", pub), newTestNode(t, "B")
	a.tasks["t1"] = startTask(t, "t1", "")
	a.tasks["t3"] = startTask(t, "t3", "")
	b.tasks["t2"] = startTask(t, "t2", "")
	port := freePort(t)
	r := routeOf(port, "", a, b)
	a.mesh.Update([]nodeapi.Route{r})

	pub.waitCall(t, a, "forward of the local tasks", func(fs []netrules.Forward) bool { return len(fs) == 1 })
	last, _ := pub.last()
	f := last[0]
	var want []netip.AddrPort
	for _, be := range r.Backends {
		if be.NodeID == "A" {
			want = append(want, netip.MustParseAddrPort(a.tasks[be.TaskID].ln.Addr().String()))
		}
	}
	if f.Port != uint16(port) || f.Total != 3 || !slices.Equal(f.Targets, want) || f.Dst != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("forward %+v; want port %d to %v of 3 on 127.0.0.1", f, port, want)
	}
	// The rules here are not real: what reaches the listener is the
	// share the kernel left, so it all goes to the other node.
	waitPass(t, a, "the listener to skip the kernel's tasks", func() bool {
		a.mesh.mu.Lock()
		defer a.mesh.mu.Unlock()
		return len(a.mesh.kernel[port].forHost) == 2
	})
	for range 6 {
		name, c, err := ask(t, port)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if name != "t2" {
			t.Fatalf("the listener sent a connection to %s, a task the kernel path takes", name)
		}
	}

	// A PROXY-protocol service stays in user space.
	a.mesh.Update([]nodeapi.Route{routeOf(port, ProxyV1, a, b)})
	pub.waitCall(t, a, "no forward for a PROXY-protocol service", func(fs []netrules.Forward) bool { return len(fs) == 0 })
	if seen := reached(t, port, 12); !seen["t1"] || !seen["t2"] {
		t.Fatalf("without a kernel path the listener reached %v; want every task", seen)
	}

	// The rules go when the mesh closes: a stopped node serves nothing.
	a.mesh.Update([]nodeapi.Route{r})
	pub.waitCall(t, a, "forward again", func(fs []netrules.Forward) bool { return len(fs) == 1 })
	a.mesh.Close()
	pub.waitCall(t, a, "rules removed at close", func(fs []netrules.Forward) bool { return fs == nil })
}

// Rules that cannot be written leave every connection to the listener,
// which then balances over every task.
func TestKernelPathFailureKeepsUserSpace(t *testing.T) {
	pub := &publisher{fail: errors.New("iptables: permission denied")}
	a, b := newKernelNode(t, "A", pub), newTestNode(t, "B")
	a.tasks["t1"] = startTask(t, "t1", "")
	b.tasks["t2"] = startTask(t, "t2", "")
	port := freePort(t)
	a.mesh.Update([]nodeapi.Route{routeOf(port, "", a, b)})
	pub.waitCall(t, a, "a try", func(fs []netrules.Forward) bool { return len(fs) == 1 })
	if seen := reached(t, port, 12); !seen["t1"] || !seen["t2"] {
		t.Fatalf("with no kernel path the listener reached %v; want every task", seen)
	}
}

// waitPass checks ok each time n's kernel loop ends a pass, until it
// holds or 5 s pass.
func waitPass(t *testing.T, n *node, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for !ok() {
		select {
		case <-n.passed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// reached are the tasks n connections to a published port reached.
func reached(t *testing.T, port uint32, n int) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for range n {
		name, c, err := ask(t, port)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		seen[name] = true
	}
	return seen
}

// A node whose last try at the kernel's rules failed still removes them
// when it stops: the failure may have left part of them behind.
func TestKernelPathRemovedAfterAFailedTry(t *testing.T) {
	pub := &publisher{fail: errors.New("iptables: resource busy")}
	a, b := newKernelNode(t, "A", pub), newTestNode(t, "B")
	a.tasks["t1"] = startTask(t, "t1", "")
	b.tasks["t2"] = startTask(t, "t2", "")
	a.mesh.Update([]nodeapi.Route{routeOf(freePort(t), "", a, b)})
	pub.waitCall(t, a, "a try", func(fs []netrules.Forward) bool { return len(fs) == 1 })
	pub.mu.Lock()
	pub.fail = nil
	pub.mu.Unlock()
	a.mesh.Close()
	if fs, calls := pub.last(); calls < 2 || fs != nil {
		t.Fatalf("after close the last call was %v (of %d); want the rules removed", fs, calls)
	}
}
