// Package testcluster starts a flotilla swarm of several nodes inside one
// test process (tier 2 of the test plan): real daemons with their own data
// dirs, API sockets and cluster ports on 127.0.0.1, formed through the
// Engine API exactly as a user would with the docker CLI.
//
//	c := testcluster.New(t, testcluster.Options{Managers: 3, Workers: 2})
//	leader := c.Leader()
//	nodes, err := leader.Client.NodeList(ctx, client.NodeListOptions{})
//
// Everything is polled with a deadline; nothing sleeps a fixed time. The
// nodes' logs go to t.Log, and the cluster stops when the test ends.
//
// Tasks run on the in-memory fake driver by default (Node.Fake, one per
// node, kept across Stop and Restart so a restarted agent re-attaches to
// its tasks), and the Docker driver is off: tests never touch the
// machine's Docker Engine. Options.Drivers chooses otherwise.
package testcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/daemon"
	"github.com/flotilla-org/flotilla/manager/raftnode"
)

// Options shape a test cluster.
type Options struct {
	Managers int // at least 1
	Workers  int
	// Timing is Raft's clock; zero uses the daemon's defaults.
	Timing raftnode.Timing
	// HeartbeatPeriod is written into the swarm spec at init (the
	// dispatcher marks a node Down after 3 missed periods); zero keeps the
	// swarm's default.
	HeartbeatPeriod time.Duration
	// Timeout bounds each wait of the harness (forming, WaitReady,
	// Leader...); zero means 30 s.
	Timeout time.Duration
	// LogLevel of the daemons' logs; the zero value is Info.
	LogLevel slog.Level
	// Drivers, if set, returns the task drivers of a node (called at each
	// start and restart). Unset, every node runs tasks that name no driver
	// on its Node.Fake, and offers no Docker driver.
	Drivers func(n *Node) daemon.DriverConfig
}

// Cluster is a running test swarm.
type Cluster struct {
	opts     Options
	log      *testLog
	dataRoot string
	sockDir  string
	Nodes    []*Node // managers first (Nodes[0] ran swarm init), then workers (AddWorker appends)

	mu sync.Mutex
	t  testing.TB // the test failures are reported on; see Run
}

// Node is one daemon of the cluster. ID, Name, Addr, Socket and DataDir
// stay the same across Stop and Restart.
type Node struct {
	Name    string // hostname it reports: m0, m1..., w0, w1...
	ID      string // swarm node ID
	Addr    string // cluster port, 127.0.0.1:port (listen and advertise)
	Socket  string // Engine API unix socket
	DataDir string
	// Client talks to the node's Engine API; it stays usable across
	// Restart (the socket path does not change).
	Client *client.Client
	// Fake is the node's fake task driver (its default driver unless
	// Options.Drivers says otherwise). It lives as long as the Node, so it
	// sees the tasks of every daemon started on this node: after Restart
	// the agent re-attaches to them, as it would to containers.
	Fake *fake.Driver

	c       *Cluster
	manager bool   // joined as a manager
	moveTo  string // cluster address the next start moves the node to

	mu sync.Mutex
	d  *daemon.Daemon
}

// New starts opts.Managers+opts.Workers daemons, forms a swarm of them and
// waits until every node is Ready on every manager. It fails the test if
// the cluster does not form within the timeout.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Managers < 1 {
		t.Fatalf("testcluster: need at least one manager, got %d", opts.Managers)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	c := &Cluster{t: t, opts: opts}
	// Cleanups run last-registered first: the log guard closes after the
	// daemons have stopped, and the data dirs go after that too (TempDir
	// registers its removal on first use, before our stop cleanup).
	c.log = newTestLog(t)
	c.dataRoot = t.TempDir()
	// Unix socket paths are limited to 108 bytes; t.TempDir() paths with
	// long test names exceed it, so sockets live in a short directory.
	sockDir, err := os.MkdirTemp("", "ftc")
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	c.sockDir = sockDir
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })

	addrs, err := freeAddrs(opts.Managers + opts.Workers)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	for i := range opts.Managers + opts.Workers {
		name := fmt.Sprintf("m%d", i)
		if i >= opts.Managers {
			name = fmt.Sprintf("w%d", i-opts.Managers)
		}
		n, err := c.newNode(name, addrs[i], i < opts.Managers)
		if err != nil {
			t.Fatalf("testcluster: %v", err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	t.Cleanup(c.StopAll)

	for _, n := range c.Nodes {
		if err := n.start(); err != nil {
			t.Fatalf("testcluster: start %s: %v", n.Name, err)
		}
	}
	start := time.Now()
	if err := c.form(); err != nil {
		t.Fatalf("testcluster: form the swarm: %v", err)
	}
	c.WaitReady(c.IDs()...)
	c.log.Logf("swarm of %d managers and %d workers formed in %s", opts.Managers, opts.Workers, time.Since(start).Round(time.Millisecond))
	return c
}

func (c *Cluster) newNode(name, addr string, manager bool) (*Node, error) {
	n := &Node{
		Name:    name,
		Addr:    addr,
		Socket:  filepath.Join(c.sockDir, name+".sock"),
		DataDir: filepath.Join(c.dataRoot, name),
		Fake:    fake.New(),
		c:       c,
		manager: manager,
	}
	var err error
	n.Client, err = client.New(client.WithHost("unix://" + n.Socket))
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", name, err)
	}
	return n, nil
}

// AddWorker starts one more daemon, joins it to the swarm as a worker
// (through every running manager's address, with the worker token the
// leader shows) and waits until it is Ready. It is appended to Nodes;
// call it from the test's goroutine only.
func (c *Cluster) AddWorker() *Node {
	t := c.tb()
	t.Helper()
	workers := 0
	for _, n := range c.Nodes {
		if !n.manager {
			workers++
		}
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	n, err := c.newNode(fmt.Sprintf("w%d", workers), addrs[0], false)
	if err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	c.Nodes = append(c.Nodes, n)
	if err := n.start(); err != nil {
		t.Fatalf("testcluster: start %s: %v", n.Name, err)
	}
	leader := c.Leader()
	ctx, cancel := c.ctx()
	defer cancel()
	sw, err := leader.Client.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		t.Fatalf("testcluster: swarm inspect on %s: %v", leader.Name, err)
	}
	var remotes []string
	for _, m := range c.Managers() {
		remotes = append(remotes, m.Addr)
	}
	if err := n.join(ctx, remotes, sw.Swarm.JoinTokens.Worker); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	c.WaitReady(n.ID)
	return n
}

// tb is the test that helpers fail: the one that made the cluster, or the
// subtest running under Run.
func (c *Cluster) tb() testing.TB {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Run runs f as a subtest of the test that made the cluster, and makes the
// cluster's helpers (Eventually, WaitReady, Leader, Restart...) fail that
// subtest rather than its parent while f runs. Subtests run this way must
// not be parallel.
func (c *Cluster) Run(name string, f func(t *testing.T)) bool {
	parent, ok := c.tb().(*testing.T)
	if !ok {
		c.tb().Fatalf("testcluster: Run needs a cluster made with a *testing.T")
	}
	return parent.Run(name, func(t *testing.T) {
		c.mu.Lock()
		c.t = t
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.t = parent
			c.mu.Unlock()
		}()
		f(t)
	})
}

// freeAddrs reserves n distinct loopback ports. They are released before
// the daemons bind them; another process could take one in between, which
// on a test machine is rare enough.
func freeAddrs(n int) ([]string, error) {
	var out []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// ctx returns a context bounded by the harness timeout.
func (c *Cluster) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.opts.Timeout)
}

// form runs swarm init on the first manager, joins the other managers one
// at a time and the workers all at once.
func (c *Cluster) form() error {
	ctx, cancel := c.ctx()
	defer cancel()
	first := c.Nodes[0]
	spec := swarm.Spec{}
	spec.Dispatcher.HeartbeatPeriod = c.opts.HeartbeatPeriod
	res, err := first.Client.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: first.Addr, AdvertiseAddr: first.Addr, Spec: spec})
	if err != nil {
		return fmt.Errorf("swarm init on %s: %w", first.Name, err)
	}
	first.ID = res.NodeID
	c.log.Logf("%s initialized the swarm as %s", first.Name, first.ID)
	sw, err := first.Client.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return fmt.Errorf("swarm inspect: %w", err)
	}
	tokens := sw.Swarm.JoinTokens
	remotes := []string{first.Addr}
	for _, n := range c.Nodes[1:c.opts.Managers] {
		if err := n.join(ctx, remotes, tokens.Manager); err != nil {
			return err
		}
		remotes = append(remotes, n.Addr)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes[c.opts.Managers:] {
		wg.Go(func() { errs[i] = n.join(ctx, remotes, tokens.Worker) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (n *Node) join(ctx context.Context, remotes []string, token string) error {
	_, err := n.Client.SwarmJoin(ctx, client.SwarmJoinOptions{ListenAddr: n.Addr, AdvertiseAddr: n.Addr, RemoteAddrs: remotes, JoinToken: token})
	if err != nil {
		return fmt.Errorf("swarm join of %s: %w", n.Name, err)
	}
	info, err := n.Client.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("info of %s: %w", n.Name, err)
	}
	if info.Info.Swarm.NodeID == "" {
		return fmt.Errorf("%s joined but reports no node ID (state %s)", n.Name, info.Info.Swarm.LocalNodeState)
	}
	n.ID = info.Info.Swarm.NodeID
	n.c.log.Logf("%s joined as %s", n.Name, n.ID)
	return nil
}

// start creates and starts the node's daemon on its data dir.
func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.d != nil {
		return fmt.Errorf("%s is already running", n.Name)
	}
	drivers := daemon.DriverConfig{Default: fake.Name, NoDocker: true, Extra: map[string]driver.Driver{fake.Name: n.Fake}}
	if n.c.opts.Drivers != nil {
		drivers = n.c.opts.Drivers(n)
	}
	d, err := daemon.New(daemon.Config{
		DataDir:  n.DataDir,
		Hosts:    []string{"unix://" + n.Socket},
		Hostname: n.Name,
		Timing:   n.c.opts.Timing,
		Drivers:  drivers,
		Log:      n.c.log.logger(n.c.opts.LogLevel, n.Name),
		// A moved node is started as `flotilla daemon --listen-addr`.
		Bootstrap: daemon.BootstrapConfig{ListenAddr: n.moveTo, AdvertiseAddr: n.moveTo},
	})
	if err != nil {
		return err
	}
	if err := d.Start(context.Background()); err != nil {
		return err
	}
	n.d = d
	return nil
}

// Stop stops the node gracefully; its state stays on disk for Restart.
// Stopping a stopped node does nothing.
func (n *Node) Stop() {
	n.mu.Lock()
	d := n.d
	n.d = nil
	n.mu.Unlock()
	if d == nil {
		return
	}
	start := time.Now()
	d.Stop()
	// Drop keep-alive connections to the old server; the client makes
	// new ones to whatever listens on the socket next.
	_ = n.Client.Close()
	n.c.log.Logf("%s (%s) stopped in %s", n.Name, n.ID, time.Since(start).Round(time.Millisecond))
}

// Restart stops the node if it runs and starts a new daemon on the same
// data dir, socket and cluster port; the node rejoins its swarm by itself.
// It does not wait for the node to be Ready (see Cluster.WaitReady).
func (n *Node) Restart() {
	n.c.tb().Helper()
	n.Stop()
	if err := n.start(); err != nil {
		n.c.tb().Fatalf("testcluster: restart %s: %v", n.Name, err)
	}
	n.c.log.Logf("%s (%s) restarted", n.Name, n.ID)
}

// Move stops the node and starts it again on a new cluster address (its
// machine got a new IP, say), with the daemon's --listen-addr and
// --advertise-addr; the node tells the managers by itself. Addr changes to
// addr. It does not wait for the node to be Ready.
func (n *Node) Move(addr string) {
	n.c.tb().Helper()
	n.Stop()
	n.mu.Lock()
	n.Addr, n.moveTo = addr, addr
	n.mu.Unlock()
	if err := n.start(); err != nil {
		n.c.tb().Fatalf("testcluster: move %s to %s: %v", n.Name, addr, err)
	}
	n.c.log.Logf("%s (%s) restarted at %s", n.Name, n.ID, addr)
}

// Running reports whether the node's daemon runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.d != nil
}

// IsManager asks the node whether it serves as a manager now.
func (n *Node) IsManager(ctx context.Context) bool {
	if !n.Running() {
		return false
	}
	info, err := n.Client.Info(ctx, client.InfoOptions{})
	return err == nil && info.Info.Swarm.ControlAvailable
}

func (n *Node) String() string { return n.Name + "(" + n.ID + ")" }

// StopAll stops every node at once, workers and managers alike; the test
// cleanup does too.
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Go(n.Stop)
	}
	wg.Wait()
}

// IDs returns every node's ID.
func (c *Cluster) IDs() []string {
	out := make([]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		out = append(out, n.ID)
	}
	return out
}

// Node returns the node with the given ID, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Managers returns the running nodes that serve as managers now.
func (c *Cluster) Managers() []*Node {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []*Node
	for _, n := range c.Nodes {
		if n.IsManager(ctx) {
			out = append(out, n)
		}
	}
	return out
}

// Followers returns the running managers other than the current leader.
func (c *Cluster) Followers() []*Node {
	c.tb().Helper()
	l := c.Leader()
	var out []*Node
	for _, n := range c.Managers() {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

// Leader waits until some running manager reports, in its own node list,
// that it is the leader, and returns it.
func (c *Cluster) Leader() *Node {
	c.tb().Helper()
	var leader *Node
	c.Eventually(c.opts.Timeout, func() error {
		var err error
		leader, err = c.FindLeader()
		return err
	})
	return leader
}

// FindLeader looks once for the leader: a running node whose own node list
// marks it as the leader.
func (c *Cluster) FindLeader() (*Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, n := range c.Nodes {
		if !n.Running() || n.ID == "" {
			continue
		}
		list, err := n.Client.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
			continue
		}
		for _, sn := range list.Items {
			if sn.ID == n.ID && sn.ManagerStatus != nil && sn.ManagerStatus.Leader {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("no running manager reports itself as the leader (%w)", errors.Join(errs...))
}

// NodeList returns the node list as seen by the first running manager
// that answers, and that manager.
func (c *Cluster) NodeList(ctx context.Context) ([]swarm.Node, *Node, error) {
	var errs []error
	for _, n := range c.Nodes {
		if !n.Running() || n.ID == "" {
			continue
		}
		list, err := n.Client.NodeList(ctx, client.NodeListOptions{})
		if err == nil {
			return list.Items, n, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Name, err))
	}
	return nil, nil, fmt.Errorf("no running node answered the node list: %w", errors.Join(errs...))
}

// WaitReady waits until every running manager lists each of the nodes as
// Ready (and, for a manager, reachable).
func (c *Cluster) WaitReady(ids ...string) {
	c.tb().Helper()
	c.waitState(ids, func(n swarm.Node) error {
		if n.Status.State != swarm.NodeStateReady {
			return fmt.Errorf("is %s (%s)", n.Status.State, n.Status.Message)
		}
		if n.ManagerStatus != nil && n.ManagerStatus.Reachability != swarm.ReachabilityReachable {
			return fmt.Errorf("is a manager with reachability %s", n.ManagerStatus.Reachability)
		}
		return nil
	})
}

// WaitDown waits until every running manager lists each of the nodes as
// Down.
func (c *Cluster) WaitDown(ids ...string) {
	c.tb().Helper()
	c.waitState(ids, func(n swarm.Node) error {
		if n.Status.State != swarm.NodeStateDown {
			return fmt.Errorf("is %s", n.Status.State)
		}
		return nil
	})
}

func (c *Cluster) waitState(ids []string, check func(swarm.Node) error) {
	c.tb().Helper()
	c.Eventually(c.opts.Timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		managers := 0
		for _, m := range c.Nodes {
			if !m.IsManager(ctx) {
				continue
			}
			managers++
			list, err := m.Client.NodeList(ctx, client.NodeListOptions{})
			if err != nil {
				return fmt.Errorf("node list on %s: %w", m.Name, err)
			}
			for _, id := range ids {
				i := slices.IndexFunc(list.Items, func(sn swarm.Node) bool { return sn.ID == id })
				if i < 0 {
					return fmt.Errorf("%s does not list node %s", m.Name, c.nameOf(id))
				}
				if err := check(list.Items[i]); err != nil {
					return fmt.Errorf("on %s, node %s %w", m.Name, c.nameOf(id), err)
				}
			}
		}
		if managers == 0 {
			return errors.New("no running manager")
		}
		return nil
	})
}

func (c *Cluster) nameOf(id string) string {
	if n := c.Node(id); n != nil {
		return n.String()
	}
	return id
}

// Eventually calls f until it returns nil, and fails the test with f's
// last error if that does not happen within timeout.
func (c *Cluster) Eventually(timeout time.Duration, f func() error) {
	c.tb().Helper()
	if err := Poll(timeout, f); err != nil {
		c.tb().Fatalf("%v", err)
	}
}

// Poll calls f until it returns nil or timeout passes; it returns f's
// last error then.
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	wait := 10 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not after %s: %w", timeout, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// SetHeartbeatPeriod changes the swarm's Dispatcher.HeartbeatPeriod (a
// node is marked Down after 3 missed periods) through the leader, as
// `docker swarm update --dispatcher-heartbeat` does, retrying within the
// harness timeout. It returns the last error rather than failing the test,
// so cleanups may call it.
func (c *Cluster) SetHeartbeatPeriod(d time.Duration) error {
	return Poll(c.opts.Timeout, func() error {
		leader, err := c.FindLeader()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sw, err := leader.Client.SwarmInspect(ctx, client.SwarmInspectOptions{})
		if err != nil {
			return err
		}
		spec := sw.Swarm.Spec
		spec.Dispatcher.HeartbeatPeriod = d
		_, err = leader.Client.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Swarm.Version, Spec: spec})
		return err
	})
}
