package mesh

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// task is a test task: it answers each connection with its name, then
// echoes (after the PROXY header, which it records, when asked).
type task struct {
	name  string
	ln    net.Listener
	proxy string
	mu    sync.Mutex
	heads []string // PROXY headers received
}

func startTask(t *testing.T, name, proxy string) *task {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tk := &task{name: name, ln: ln, proxy: proxy}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go tk.serve(c)
		}
	}()
	return tk
}

func (tk *task) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	switch tk.proxy {
	case ProxyV1:
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		tk.record(line)
	case ProxyV2:
		h := make([]byte, 16)
		if _, err := io.ReadFull(r, h); err != nil {
			return
		}
		rest := make([]byte, binary.BigEndian.Uint16(h[14:]))
		if _, err := io.ReadFull(r, rest); err != nil {
			return
		}
		tk.record(string(append(h, rest...)))
	}
	fmt.Fprintf(c, "%s\n", tk.name)
	_, _ = io.Copy(c, r)
}

func (tk *task) record(h string) {
	tk.mu.Lock()
	tk.heads = append(tk.heads, h)
	tk.mu.Unlock()
}

// node is a test node: a mesh, its tasks, and a relay listener standing
// in for the cluster port.
type node struct {
	id       string
	mesh     *Mesh
	relay    net.Listener
	tasks    map[string]*task
	udpTasks map[string]string // task → address
	passed   chan struct{}     // the kernel loop ended a pass (newKernelNode)
}

func newTestNode(t *testing.T, id string) *node {
	t.Helper()
	return newKernelNode(t, id, nil)
}

// newKernelNode is a test node whose mesh writes its kernel path with k;
// its kernel loop signals n.passed as each pass ends.
func newKernelNode(t *testing.T, id string, k Publisher) *node {
	t.Helper()
	n := &node{id: id, tasks: map[string]*task{}, udpTasks: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.relay = ln
	cfg := Config{NodeID: id, BindHost: "127.0.0.1",
		Local: func(_ context.Context, taskID string, p driver.Port) (string, error) {
			if p.Proto == "udp" && n.udpTasks[taskID] != "" {
				return n.udpTasks[taskID], nil
			}
			tk := n.tasks[taskID]
			if tk == nil || p.Proto != "tcp" {
				return "", errors.New("no such task here")
			}
			return tk.ln.Addr().String(), nil
		},
		DialPeer: func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		Kernel: k,
		Log:    slog.New(slog.DiscardHandler)}
	if k != nil {
		n.passed = make(chan struct{}, 1)
		cfg.kernelPassed = n.passed
	}
	n.mesh = New(cfg)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go n.mesh.ServeRelay(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); n.mesh.Close() })
	return n
}

func freePort(t *testing.T) uint32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint32(ln.Addr().(*net.TCPAddr).Port)
}

func routeOf(port uint32, proxy string, nodes ...*node) nodeapi.Route {
	r := nodeapi.Route{ServiceID: "svc", ServiceName: "web", ProxyProtocol: proxy,
		Ports: []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: port, PublishMode: swarm.PortConfigPublishModeIngress}}}
	for _, n := range nodes {
		for id := range n.tasks {
			r.Backends = append(r.Backends, nodeapi.Backend{TaskID: id, NodeID: n.id, NodeAddr: n.relay.Addr().String()})
		}
	}
	return r
}

// ask connects to a published port and returns the task's name.
func ask(t *testing.T, port uint32) (string, net.Conn, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		return "", nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return "", nil, err
	}
	_ = c.SetReadDeadline(time.Time{})
	return strings.TrimSpace(line), c, nil
}

func TestMeshBalancesAcrossNodes(t *testing.T) {
	a, b := newTestNode(t, "A"), newTestNode(t, "B")
	a.tasks["t1"] = startTask(t, "t1", "")
	b.tasks["t2"] = startTask(t, "t2", "")
	port := freePort(t)
	routes := []nodeapi.Route{routeOf(port, "", a, b)}
	a.mesh.Update(routes)

	seen := map[string]int{}
	for range 6 {
		name, c, err := ask(t, port)
		if err != nil {
			t.Fatalf("connection through the mesh: %v", err)
		}
		c.Close()
		seen[name]++
	}
	if seen["t1"] == 0 || seen["t2"] == 0 {
		t.Errorf("connections went to %v; want both the local and the remote task", seen)
	}

	// Payload goes both ways unchanged, through the relay too.
	for range 2 {
		name, c, err := ask(t, port)
		if err != nil {
			t.Fatal(err)
		}
		msg := "hello through " + name + "\n"
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != msg {
			t.Errorf("echo via %s: got %q, %v; want %q", name, got, err, msg)
		}
	}
}

func TestMeshSkipsUnreachableTaskAndRefusesWithNone(t *testing.T) {
	a, b := newTestNode(t, "A"), newTestNode(t, "B")
	a.tasks["t1"] = startTask(t, "t1", "")
	port := freePort(t)
	r := routeOf(port, "", a)
	// A task whose node is gone (its relay refuses): skipped, not hung on.
	dead := newTestNode(t, "dead")
	dead.relay.Close()
	r.Backends = append(r.Backends, nodeapi.Backend{TaskID: "t9", NodeID: "dead", NodeAddr: dead.relay.Addr().String()})
	a.mesh.Update([]nodeapi.Route{r})
	for range 4 {
		name, c, err := ask(t, port)
		if err != nil || name != "t1" {
			t.Fatalf("got %q, %v; want every connection served by t1", name, err)
		}
		c.Close()
	}

	// No task running: the connection is closed at once.
	_ = b
	a.mesh.Update([]nodeapi.Route{routeOf(port, "")})
	if _, _, err := ask(t, port); err == nil {
		t.Errorf("a connection with no task running was answered")
	}
}

func TestMeshClosesConnectionsOfTaskLeavingRotation(t *testing.T) {
	a, b := newTestNode(t, "A"), newTestNode(t, "B")
	b.tasks["t2"] = startTask(t, "t2", "")
	port := freePort(t)
	a.mesh.Update([]nodeapi.Route{routeOf(port, "", b)})
	_, c, err := ask(t, port)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// t2's node went Down: the table no longer has it.
	a.mesh.Update([]nodeapi.Route{routeOf(port, "")})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("an open connection to a task that left rotation was not closed: read gave %v", err)
	}
	// The port closes with the last service publishing it.
	a.mesh.Update(nil)
	if _, _, err := ask(t, port); err == nil {
		t.Errorf("port %d still answers after it was unpublished", port)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestMeshSendsProxyProtocol(t *testing.T) {
	for _, v := range []string{ProxyV1, ProxyV2} {
		t.Run(v, func(t *testing.T) {
			a, b := newTestNode(t, "A"), newTestNode(t, "B")
			b.tasks["t2"] = startTask(t, "t2", v)
			port := freePort(t)
			a.mesh.Update([]nodeapi.Route{routeOf(port, v, b)})
			_, c, err := ask(t, port)
			if err != nil {
				t.Fatal(err)
			}
			client := c.LocalAddr().(*net.TCPAddr)
			c.Close()
			tk := b.tasks["t2"]
			tk.mu.Lock()
			defer tk.mu.Unlock()
			if len(tk.heads) != 1 {
				t.Fatalf("task got %d PROXY headers, want 1", len(tk.heads))
			}
			h := tk.heads[0]
			switch v {
			case ProxyV1:
				want := fmt.Sprintf("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\n", client.Port, port)
				if h != want {
					t.Errorf("v1 header %q, want %q", h, want)
				}
			case ProxyV2:
				if !strings.HasPrefix(h, string(v2Signature)) || h[12] != 0x21 || h[13] != 0x11 {
					t.Fatalf("v2 header %x: bad signature, version or family", h)
				}
				src := net.IP([]byte(h[16:20]))
				sport := binary.BigEndian.Uint16([]byte(h[24:26]))
				dport := binary.BigEndian.Uint16([]byte(h[26:28]))
				if !src.Equal(client.IP) || int(sport) != client.Port || uint32(dport) != port {
					t.Errorf("v2 header says %s:%d -> :%d, want %s:%d -> :%d", src, sport, dport, client.IP, client.Port, port)
				}
			}
		})
	}
}

func TestRelayRefusesUnknownTaskAndBadHeader(t *testing.T) {
	b := newTestNode(t, "B")
	for _, hdr := range []string{`{"Task":"nope","Port":{"Target":80,"Proto":"tcp"}}`, `not json`} {
		c, err := net.Dial("tcp", b.relay.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "%s\n", hdr)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "error: ") {
			t.Errorf("relay header %s answered %q, want an error", hdr, line)
		}
	}
}

// A connection still waiting on a task that leaves the table (its machine
// died silently, so the dial hangs) goes to another task: the client saw
// nothing yet and must not get an error.
func TestMeshMovesPendingConnectionOfTaskLeavingRotation(t *testing.T) {
	a := newTestNode(t, "A")
	a.tasks["t1"] = startTask(t, "t1", "")
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := silent.Accept(); err == nil {
			accepted <- c // held open, never answered
		}
	}()
	port := freePort(t)
	r := routeOf(port, "", a)
	r.Backends = append(r.Backends, nodeapi.Backend{TaskID: "t9", NodeID: "dead", NodeAddr: silent.Addr().String()})
	a.mesh.Update([]nodeapi.Route{r})

	type answer struct {
		name string
		err  error
	}
	// Connections take the tasks in turn from a random one: ask until one
	// is sent to t9 (at most every other one goes to t1 first).
	var got chan answer
	var start time.Time
	sent := false
	for try := 0; try < 4 && !sent; try++ {
		got = make(chan answer, 1)
		start = time.Now()
		go func() {
			name, c, err := ask(t, port)
			if c != nil {
				c.Close()
			}
			got <- answer{name, err}
		}()
		select {
		case c := <-accepted:
			defer c.Close()
			sent = true
		case ans := <-got:
			if ans.err != nil || ans.name != "t1" {
				t.Fatalf("got %q, %v; want t1 while t9's node is silent", ans.name, ans.err)
			}
		case <-time.After(dialTimeout):
			t.Fatal("the connection was neither answered nor sent to t9")
		}
	}
	if !sent {
		t.Fatal("no connection was sent to t9 in 4 tries")
	}
	a.mesh.Update([]nodeapi.Route{routeOf(port, "", a)}) // t9's node is Down
	ans := <-got
	if ans.err != nil || ans.name != "t1" {
		t.Fatalf("got %q, %v; want the connection moved to t1", ans.name, ans.err)
	}
	if d := time.Since(start); d >= dialTimeout {
		t.Errorf("the connection waited %s, the whole dial timeout, after t9 left the table", d)
	}
}

// A node that accepts connections and never answers (a machine gone
// silent, not yet marked Down) costs one connection the dial timeout; the
// next ones try it last and are served at once.
func TestMeshTriesSilentNodeLast(t *testing.T) {
	a := newTestNode(t, "A")
	a.tasks["t1"] = startTask(t, "t1", "")
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	port := freePort(t)
	r := routeOf(port, "", a)
	r.Backends = append(r.Backends, nodeapi.Backend{TaskID: "t9", NodeID: "silent", NodeAddr: silent.Addr().String()})
	a.mesh.Update([]nodeapi.Route{r})
	for i := range 5 {
		name, c, err := ask(t, port)
		if err != nil || name != "t1" {
			t.Fatalf("connection %d: %q, %v; want t1 to answer", i, name, err)
		}
		c.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(held) != 1 {
		t.Errorf("the silent node got %d connections out of 5, want only the first one that tried it", len(held))
	}
}
