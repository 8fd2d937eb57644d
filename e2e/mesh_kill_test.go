package e2e

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
// arrived and from which node, so a test sees every connection still sent
// to the dead node.
type blackHole struct {
	mu     sync.Mutex
	relays []relayAt
}

type relayAt struct {
	at   time.Time
	from string // the node whose mesh sent it, "" if it could not be traced
}

func newBlackHole(t *testing.T, addr string, nodes []*node) *blackHole {
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
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r := relayAt{at: time.Now()}
			go func() {
				defer c.Close()
				r.from = dialledBy(c, nodes)
				cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
					if slices.Contains(h.SupportedProtos, "flotilla-mesh/1") {
						bh.mu.Lock()
						bh.relays = append(bh.relays, r)
						bh.mu.Unlock()
					}
					<-h.Context().Done() // silent until the test ends
					return nil, h.Context().Err()
				}}
				_ = tls.Server(c, cfg).HandshakeContext(ctx)
			}()
		}
	}()
	return bh
}

func (bh *blackHole) times() []relayAt {
	bh.mu.Lock()
	defer bh.mu.Unlock()
	return slices.Clone(bh.relays)
}

// dialledBy names the node whose daemon holds the other end of c, a
// loopback connection this process accepted: /proc/net/tcp gives the
// dialler's socket, and the daemon with that socket among its files is
// the one. It returns "" when the dialler has closed its end already (it
// gave up on the dead node the moment its table dropped it).
func dialledBy(c net.Conn, nodes []*node) string {
	hexAddr := func(a net.Addr) string {
		ta, ok := a.(*net.TCPAddr)
		if !ok || ta.IP.To4() == nil {
			return ""
		}
		return fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(ta.IP.To4()), ta.Port)
	}
	from, to := hexAddr(c.RemoteAddr()), hexAddr(c.LocalAddr())
	b, _ := os.ReadFile("/proc/net/tcp")
	inode := ""
	for _, l := range strings.Split(string(b), "\n") {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		if f := strings.Fields(l); len(f) > 9 && f[1] == from && f[2] == to {
			inode = f[9]
			break
		}
	}
	if inode == "" {
		return ""
	}
	for _, n := range nodes {
		n.mu.Lock()
		cmd := n.cmd
		n.mu.Unlock()
		if cmd == nil {
			continue
		}
		dir := fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join(dir, fd.Name())); l == "socket:["+inode+"]" {
				return n.name
			}
		}
	}
	return ""
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
	via   []*node
	mu    sync.Mutex
	conns []meshConn
	stop  func()
}

func startMeshLoad(t *testing.T, port uint32, every time.Duration, via ...*node) *meshLoad {
	l := &meshLoad{via: via}
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

// reached says whether connections made since then through every node
// of the load reached every task in rows.
func (l *meshLoad) reached(since time.Time, rows []psRow) error {
	seen := map[*node]map[string]bool{}
	for _, cn := range l.snapshot() {
		if cn.task != "" && cn.start.After(since) {
			if seen[cn.via] == nil {
				seen[cn.via] = map[string]bool{}
			}
			seen[cn.via][cn.task] = true
		}
	}
	for _, n := range l.via {
		for _, r := range rows {
			if !seen[n][r.ID] {
				return fmt.Errorf("no connection through %s reached task %s on %s yet", n, r.ID, r.Node)
			}
		}
	}
	return nil
}

// check fails t for each connection whose retry failed too, and for each
// made after settled (the failed node could no longer have a connection
// under way) that needed its retry: the mesh moves those to another task
// itself. It counts those retried and failed.
func (l *meshLoad) check(t *testing.T, since, settled time.Time) (retried, failed int) {
	t.Helper()
	for _, cn := range l.snapshot() {
		at := cn.start.Sub(since).Seconds()
		if cn.first != nil {
			retried++
			if cn.start.After(settled) {
				t.Errorf("a connection through %s at %+.3fs needed its retry: %v", cn.via, at, cn.first)
			}
		}
		if cn.err != nil {
			failed++
			t.Errorf("a connection through %s at %+.3fs failed twice: %v; then %v", cn.via, at, cn.first, cn.err)
		}
	}
	return retried, failed
}

func (l *meshLoad) snapshot() []meshConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.conns)
}

// waitDown waits until `node ls` on via shows n Down, and returns when it
// did.
func waitDown(t *testing.T, via, n *node) time.Time {
	t.Helper()
	eventually(t, downTimeout, rowsMatch(via, func(m map[string]nodeRow) error {
		if s := m[n.name].Status; s != "Down" {
			return fmt.Errorf("%s is %s", n, s)
		}
		return nil
	}))
	return time.Now()
}

// TestMeshWorkerKilled kills a worker running a task of a published
// service the way a machine dies (kill -9 of its daemon and its task
// processes; its address then answers nothing) while clients connect to
// the published port of every other node: a client that retries once
// never sees an error (and one that connects after the kill never needs
// its retry), once the node is Down no connection is sent to its task on
// any node, and the replacement task joins the rotation. It logs when the
// task left each node's rotation.
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
	settled := time.Now() // no connection can be under way through its relay
	killed := killTaskProcesses(victim.dir)
	bh := newBlackHole(t, victim.addr, survivors)
	t.Logf("killed %s (task %s) and its %d task processes in %s", victim, dead, len(killed), time.Since(killAt).Round(time.Millisecond))

	downAt := waitDown(t, m1, victim)
	rows = m1.waitRunning(t, "web", 3, convergeTimeout, func(name string) bool { return name != victim.name })
	eventually(t, convergeTimeout, func() error { return load.reached(downAt, rows) })
	load.stop()
	retried, failed := load.check(t, killAt, settled)

	// Once the node is Down, no connection goes to its task: the black hole
	// saw no relay after that (a second for the table to reach the nodes,
	// on a loaded machine). The last relay from each node is when the task
	// left its rotation, give or take the load's pace.
	relays := bh.times()
	last := map[string]time.Duration{}
	for _, r := range relays {
		if r.at.After(downAt.Add(time.Second)) {
			t.Errorf("a connection was relayed to the dead task at +%s (by %q), after %s was seen Down at +%s",
				r.at.Sub(killAt).Round(time.Millisecond), r.from, victim, downAt.Sub(killAt).Round(time.Millisecond))
		}
		last[r.from] = max(last[r.from], r.at.Sub(killAt).Round(time.Millisecond))
	}
	var report []string
	for from, d := range last {
		if from == "" {
			from = "untraced"
		}
		report = append(report, fmt.Sprintf("%s +%s", from, d))
	}
	sort.Strings(report)
	t.Logf("after the kill: %s seen Down at +%s; %d connections, %d retried once, %d failed twice; %d sent to the dead machine, "+
		"the last from each node (when the task left its rotation, within the load's pace): %s",
		victim, downAt.Sub(killAt).Round(time.Millisecond), len(load.snapshot()), retried, failed, len(relays), strings.Join(report, ", "))
}
