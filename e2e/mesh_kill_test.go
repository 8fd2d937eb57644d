package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// blackHole stands in for a dead machine's cluster port. A machine that
// is gone does not refuse connections, it leaves them unanswered: the
// black hole accepts and never answers, and records when each routing
// mesh relay (ALPN flotilla-mesh/1, read from the TLS ClientHello)
// arrived, so a test sees every connection still sent to the dead node.
type blackHole struct {
	mu     sync.Mutex
	relays []time.Time
}

func newBlackHole(t *testing.T, addr string) *blackHole {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("black hole on the dead node's address %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		ln.Close()
	})
	bh := &blackHole{}
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(h.SupportedProtos, "flotilla-mesh/1") {
			bh.mu.Lock()
			bh.relays = append(bh.relays, time.Now())
			bh.mu.Unlock()
		}
		<-h.Context().Done() // silent until the test ends
		return nil, h.Context().Err()
	}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = tls.Server(c, cfg).HandshakeContext(ctx)
			}()
		}
	}()
	return bh
}

func (bh *blackHole) times() []time.Time {
	bh.mu.Lock()
	defer bh.mu.Unlock()
	return slices.Clone(bh.relays)
}

// meshConn is one client connection of a load loop: the task that
// answered, or the errors of both tries.
type meshConn struct {
	via        *node
	start, end time.Time
	task       string
	first, err error // the first try's error, and the retry's
}

// meshLoad opens connections to the published port of each node given at
// a steady rate, whether earlier ones were answered or not (as independent
// clients do), each retrying once on failure, until stopped.
type meshLoad struct {
	mu    sync.Mutex
	conns []meshConn
	stop  func()
}

func startMeshLoad(t *testing.T, port uint32, every time.Duration, via ...*node) *meshLoad {
	l := &meshLoad{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range via {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := meshConn{via: n, start: time.Now()}
					a, err := askMesh(n.publishHost, port)
					if err != nil {
						c.first = err
						a, err = askMesh(n.publishHost, port)
					}
					c.end, c.err = time.Now(), err
					if err == nil {
						c.task = a.task
						a.conn.Close()
					}
					l.mu.Lock()
					l.conns = append(l.conns, c)
					l.mu.Unlock()
				}()
			}
		}()
	}
	l.stop = sync.OnceFunc(func() {
		close(done)
		wg.Wait()
	})
	t.Cleanup(l.stop)
	return l
}

func (l *meshLoad) snapshot() []meshConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.conns)
}

// TestMeshWorkerKilled kills a worker running a task of a published
// service the way a machine dies (kill -9 of its daemon and its task
// processes; its address then answers nothing) while clients connect to
// the published port of every other node: a client that retries once
// never sees an error, and once the node is Down no connection is sent to
// its task on any node; the replacement task joins the rotation.
func TestMeshWorkerKilled(t *testing.T) {
	c := newClusterArgs(t, 3, 2, "--no-docker")
	m1 := c.managers[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	app := buildE2EApp(ctx, t)
	port := uint32(freePort(t))

	// With m3 left out, spreading three tasks over four nodes puts at
	// least one on a worker, and m3 only relays.
	spec := meshServiceSpec("web", app, port, 3, nil)
	spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.hostname!=m3"}}
	status, body, err := m1.apiRequest(http.MethodPost, "/services/create", spec)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create web: %d %s %v", status, body, err)
	}
	rows := m1.waitRunning(t, "web", 3, convergeTimeout, nil)
	var victim *node
	var dead string
	for _, r := range rows {
		if n := c.node(r.Node); !c.isManager(n) {
			victim, dead = n, r.ID
			break
		}
	}
	if victim == nil {
		t.Fatalf("no task of web runs on a worker: %v", rows)
	}

	// Every node spreads connections over all three tasks.
	for _, n := range c.nodes {
		eventually(t, convergeTimeout, func() error {
			seen, err := meshTasks(n.publishHost, port, 12)
			if err != nil {
				return err
			}
			for _, r := range rows {
				if seen[r.ID] == 0 {
					return fmt.Errorf("connections to %s reached %v; none the task on %s (%s)", n, seen, r.Node, r.ID)
				}
			}
			return nil
		})
	}

	survivors := slices.DeleteFunc(slices.Clone(c.nodes), func(n *node) bool { return n == victim })
	// A new connection every 25 ms through each node leaves the daemons most
	// of the 2 cores.
	load := startMeshLoad(t, port, 25*time.Millisecond, survivors...)
	eventually(t, convergeTimeout, func() error {
		if n := len(load.snapshot()); n < 4*len(survivors) {
			return fmt.Errorf("%d connections made so far", n)
		}
		return nil
	})

	// The machine dies: its daemon, then its tasks, and its address goes
	// silent.
	killAt := time.Now()
	victim.Kill9()
	killed := killTaskProcesses(victim.dir)
	bh := newBlackHole(t, victim.addr)
	t.Logf("killed %s (task %s) and its %d task processes in %s", victim, dead, len(killed), time.Since(killAt).Round(time.Millisecond))

	eventually(t, downTimeout, rowsMatch(m1, func(m map[string]nodeRow) error {
		if s := m[victim.name].Status; s != "Down" {
			return fmt.Errorf("%s is %s", victim, s)
		}
		return nil
	}))
	downAt := time.Now()
	rows = m1.waitRunning(t, "web", 3, convergeTimeout, func(name string) bool { return name != victim.name })
	// The load reaches every current task, the replacement included,
	// through every node.
	eventually(t, convergeTimeout, func() error {
		seen := map[string]map[string]bool{}
		for _, cn := range load.snapshot() {
			if cn.task != "" && cn.start.After(downAt) {
				if seen[cn.via.name] == nil {
					seen[cn.via.name] = map[string]bool{}
				}
				seen[cn.via.name][cn.task] = true
			}
		}
		for _, n := range survivors {
			for _, r := range rows {
				if !seen[n.name][r.ID] {
					return fmt.Errorf("no connection through %s reached task %s on %s since %s was Down", n, r.ID, r.Node, victim)
				}
			}
		}
		return nil
	})
	load.stop()
	conns := load.snapshot()

	// A client that retries once never saw an error.
	retried := 0
	for _, cn := range conns {
		if cn.first != nil {
			retried++
		}
		if cn.err != nil {
			t.Errorf("a connection through %s at +%s failed twice: %v; then %v", cn.via, cn.start.Sub(killAt).Round(time.Millisecond), cn.first, cn.err)
		}
	}

	// Once the node is Down, no connection goes to its task: the black hole
	// saw no relay after that (a second for the table to reach the nodes,
	// on a loaded machine).
	relays := bh.times()
	for _, at := range relays {
		if at.After(downAt.Add(time.Second)) {
			t.Errorf("a connection was relayed to the dead task at +%s, after %s was seen Down at +%s",
				at.Sub(killAt).Round(time.Millisecond), victim, downAt.Sub(killAt).Round(time.Millisecond))
		}
	}

	// When the task left each node's rotation: the connections through that
	// node that the dead machine was holding (the mesh gives a silent task
	// 2 s) were let go to another task then, all at once; the first to be
	// answered marks the moment.
	var report []string
	for _, n := range survivors {
		var left time.Time
		released := 0
		for _, cn := range conns {
			if d := cn.end.Sub(cn.start); cn.via == n && cn.start.After(killAt) && d > 500*time.Millisecond && d < 1900*time.Millisecond {
				released++
				if left.IsZero() || cn.end.Before(left) {
					left = cn.end
				}
			}
		}
		if released == 0 {
			report = append(report, fmt.Sprintf("%s (no connection was waiting on it then)", n))
			continue
		}
		report = append(report, fmt.Sprintf("%s at +%s (%d moved)", n, left.Sub(killAt).Round(time.Millisecond), released))
	}
	sort.Strings(report)
	var lastRelay time.Duration
	if len(relays) > 0 {
		lastRelay = slices.MaxFunc(relays, time.Time.Compare).Sub(killAt).Round(time.Millisecond)
	}
	t.Logf("after the kill: %s seen Down at +%s; %d connections, %d retried once, none failed; %d sent to the dead machine, the last at +%s; "+
		"the dead task left rotation (connections it held moved to other tasks) on %s",
		victim, downAt.Sub(killAt).Round(time.Millisecond), len(conns), retried, len(relays), lastRelay, strings.Join(report, ", "))
}
