package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/netrules"
)

// Deadlines. Heartbeats come every second and a dead node is marked Down
// about 3 s after it dies; Raft fails over in about a second. These bounds
// leave room for a loaded 2-core machine without hiding a hang.
const (
	apiUpTimeout    = 20 * time.Second // a daemon's API socket answering
	convergeTimeout = 30 * time.Second // every node Ready, managers reachable
	downTimeout     = 15 * time.Second // a dead or departed node shown Down
	cliTimeout      = 30 * time.Second // any single CLI call
	stopTimeout     = 20 * time.Second // a daemon exiting after SIGTERM
	// neverBackWindow is how long a removed node is watched to make sure it
	// does not come back: several heartbeat periods.
	neverBackWindow = 4 * time.Second
	logTailLines    = 60
)

// ---------------------------------------------------------------------------
// Polling

// poll calls fn until it returns nil or timeout has passed, and returns the
// last error.
func poll(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		time.Sleep(min(delay, left)) // polling interval, bounded by the deadline
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// eventually fails the test unless fn returns nil within timeout.
func eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	start := time.Now()
	if err := poll(timeout, fn); err != nil {
		t.Fatalf("condition not met within %s (waited %s): %v", timeout, time.Since(start).Round(time.Millisecond), err)
	}
}

// consistently fails the test if fn returns an error at any point during
// the period.
func consistently(t testing.TB, period time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(period)
	for {
		if err := fn(); err != nil {
			t.Fatalf("condition broken after %s of %s: %v", period-time.Until(deadline), period, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		time.Sleep(min(200*time.Millisecond, left)) // observation interval
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// It is taken below the kernel's ephemeral range (32768-60999 here) and
// below the managers' range for published ports (30000-32767): a port
// from the ephemeral range could be handed to a listener on port 0 (a
// node's capture listener, a test's own) before the daemon it was meant
// for binds it.
func freePort(t testing.TB) int {
	t.Helper()
	givenMu.Lock()
	defer givenMu.Unlock()
	for range 10000 {
		port := 20000 + rand.IntN(10000)
		if given[port] {
			continue // never give a port twice in a run
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		given[port] = true
		return port
	}
	t.Fatal("no free port found in 20000-29999")
	return 0
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{}
)

// tempDir makes a short temporary directory (unix socket paths must stay
// under ~100 bytes, which t.TempDir's long names can exceed) and removes it
// when the test ends.
func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fe2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	return dir
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// A node: one daemon process

type node struct {
	t       *testing.T
	name    string // --hostname
	dir     string
	dataDir string
	sock    string
	logPath string
	port    int
	addr    string   // cluster address, 127.0.0.1:port
	id      string   // node ID, once in a swarm
	args    []string // extra daemon flags, e.g. --no-docker
	// publishHost is where the node's routing mesh listens.
	publishHost string
	env         []string // extra daemon environment, e.g. a test-only fault switch
	bin         string   // the daemon's binary when not flotillaBin (an older flotilla)
	// prefix runs the daemon through another command, e.g. `ip netns
	// exec NS` to give it a network of its own.
	prefix []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

func newNode(t *testing.T, base, name string) *node {
	t.Helper()
	dir := filepath.Join(base, name)
	n := &node{
		t:       t,
		name:    name,
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sock:    filepath.Join(dir, "api.sock"),
		logPath: filepath.Join(dir, "daemon.log"),
		port:    freePort(t),
	}
	n.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
	if err := os.MkdirAll(n.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	return n
}

// host is the node's API address for -H / DOCKER_HOST.
func (n *node) host() string { return "unix://" + n.sock }

func (n *node) String() string { return n.name }

// running reports whether the daemon process is alive.
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// launch starts the daemon on the node's data dir without waiting for its
// API; output is appended to its log file.
func (n *node) launch() {
	n.t.Helper()
	if err := n.tryLaunch(); err != nil {
		n.t.Fatal(err)
	}
}

// tryLaunch is launch for goroutines other than the test's: it returns the
// error instead of failing the test.
func (n *node) tryLaunch() error {
	if n.running() {
		return fmt.Errorf("%s: daemon already running", n)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== e2e: starting %s at %s\n", n.name, time.Now().Format(time.RFC3339Nano))
	bin := flotillaBin
	if n.bin != "" {
		bin = n.bin
	}
	argv := append(slices.Clone(n.prefix), bin, "daemon", "--data-dir", n.dataDir, "-H", n.host(), "--hostname", n.name)
	argv = append(argv, n.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = n.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = cleanEnv(n.env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, killed whole
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: starting the daemon: %v", n, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	return nil
}

// waitAPI waits until the daemon answers GET /_ping.
func (n *node) waitAPI() {
	n.t.Helper()
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	err := poll(apiUpTimeout, func() error {
		select {
		case <-done:
			return errExited
		default:
		}
		return n.ping()
	})
	if errors.Is(err, errExited) {
		n.t.Fatalf("%s: the daemon exited before its API came up; log:\n%s", n, tail(n.logPath, logTailLines))
	}
	if err != nil {
		n.t.Fatalf("%s: API not up within %s: %v; log:\n%s", n, apiUpTimeout, err, tail(n.logPath, logTailLines))
	}
}

var errExited = errors.New("daemon exited")

// Start starts the daemon (again) on the same data dir and waits for its
// API.
func (n *node) Start() {
	n.t.Helper()
	n.launch()
	n.waitAPI()
}

// Kill9 kills the daemon's process group with SIGKILL and waits for it to
// exit.
func (n *node) Kill9() {
	n.t.Helper()
	if err := n.signal(syscall.SIGKILL); err != nil {
		n.t.Fatalf("%s: kill -9: %v", n, err)
	}
	if !n.wait(10 * time.Second) {
		n.t.Fatalf("%s: still running 10s after SIGKILL", n)
	}
}

// Stop asks the daemon to stop (SIGTERM) and waits; a daemon that does not
// stop in time is killed and the test fails.
func (n *node) Stop() {
	n.t.Helper()
	if err := n.signal(syscall.SIGTERM); err != nil {
		n.t.Fatalf("%s: SIGTERM: %v", n, err)
	}
	if n.wait(stopTimeout) {
		return
	}
	_ = n.signal(syscall.SIGKILL)
	n.wait(10 * time.Second)
	n.t.Errorf("%s: the daemon did not stop within %s of SIGTERM; log:\n%s", n, stopTimeout, tail(n.logPath, logTailLines))
}

func (n *node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return errors.New("never started")
	}
	select {
	case <-done:
		return errors.New("not running")
	default:
	}
	err := syscall.Kill(-cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func (n *node) wait(timeout time.Duration) bool {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	if done == nil {
		return true
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		return false
	}
}

// kill is the cleanup path: SIGKILL to the group, if anything is running.
func (n *node) kill() {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil || !n.running() {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if !n.wait(10 * time.Second) {
		n.t.Errorf("%s: pid %d survived SIGKILL", n, cmd.Process.Pid)
	}
}

// ping does GET /_ping on the API socket.
func (n *node) ping() error {
	c := http.Client{
		Timeout: time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", n.sock)
		}},
	}
	defer c.CloseIdleConnections()
	res, err := c.Get("http://flotilla/_ping")
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s", res.Status)
	}
	return nil
}

// apiRequest sends one raw request to the node's Engine API.
func (n *node) apiRequest(method, path string, body any) (int, []byte, error) {
	return socketRequest(n.sock, method, path, body)
}

// socketRequest sends one Engine API request to the unix socket sock. A
// body that is an io.Reader is sent as it is, others as JSON.
func socketRequest(sock, method, path string, body any) (int, []byte, error) {
	c := http.Client{
		Timeout: cliTimeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	defer c.CloseIdleConnections()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://flotilla"+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// cleanEnv is the environment of the commands the tests run: this
// process's, without anything that could point a client elsewhere, plus
// extra.
func cleanEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "FLOTILLA_HOST" || strings.HasPrefix(k, "DOCKER_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// cliResult is what one CLI run printed.
type cliResult struct {
	stdout, stderr string
	err            error
	elapsed        time.Duration
}

// run runs a command with a timeout; err says so when it timed out.
func run(timeout time.Duration, env []string, name string, args ...string) cliResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %s (the command hangs): %v", timeout, err)
	}
	if err != nil {
		res.err = fmt.Errorf("%s %s: %w; stderr: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(res.stderr))
	}
	return res
}

// CLI runs `flotilla -H <this node> args...`.
func (n *node) CLI(args ...string) (stdout, stderr string, err error) {
	r := n.cliTimeout(cliTimeout, args...)
	return r.stdout, r.stderr, r.err
}

func (n *node) cliTimeout(timeout time.Duration, args ...string) cliResult {
	return run(timeout, cleanEnv(nil), flotillaBin, append([]string{"-H", n.host()}, args...)...)
}

// mustCLI runs the CLI and fails t on error; it returns stdout. (It takes
// t so that subtests can use it.)
func (n *node) mustCLI(t testing.TB, args ...string) string {
	t.Helper()
	out, _, err := n.CLI(args...)
	if err != nil {
		t.Fatalf("on %s: %v", n, err)
	}
	return out
}

// swarmInfo is the Swarm section of GET /info, as `info --format` prints
// it.
type swarmInfo struct {
	NodeID           string
	NodeAddr         string
	LocalNodeState   string
	ControlAvailable bool
	Error            string
	RemoteManagers   []struct{ NodeID, Addr string }
	Nodes            int
	Managers         int
}

func (n *node) swarmInfo() (swarmInfo, error) {
	out, _, err := n.CLI("info", "--format", "{{json .Swarm}}")
	if err != nil {
		return swarmInfo{}, err
	}
	var si swarmInfo
	if err := json.Unmarshal([]byte(out), &si); err != nil {
		return swarmInfo{}, fmt.Errorf("decoding `info --format '{{json .Swarm}}'` of %s: %v: %q", n, err, out)
	}
	return si, nil
}

// ---------------------------------------------------------------------------
// node ls, parsed

type nodeRow struct {
	ID, Hostname, Status, Availability, ManagerStatus string
	Self                                              bool
}

func (r nodeRow) String() string {
	return fmt.Sprintf("%s(%s %s %s %q)", r.Hostname, r.ID, r.Status, r.Availability, r.ManagerStatus)
}

const rowFormat = "{{.ID}}|{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}|{{.Self}}"

// rows runs `node ls` on this node and parses it.
func (n *node) rows(extra ...string) ([]nodeRow, error) {
	out, _, err := n.CLI(append([]string{"node", "ls", "--format", rowFormat}, extra...)...)
	if err != nil {
		return nil, err
	}
	var rows []nodeRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != 6 {
			return nil, fmt.Errorf("unexpected node ls line %q", line)
		}
		rows = append(rows, nodeRow{f[0], f[1], f[2], f[3], f[4], f[5] == "true"})
	}
	return rows, nil
}

// byHost indexes rows by hostname, failing on duplicates.
func byHost(rows []nodeRow) (map[string]nodeRow, error) {
	m := map[string]nodeRow{}
	for _, r := range rows {
		if _, dup := m[r.Hostname]; dup {
			return nil, fmt.Errorf("hostname %s listed twice: %v", r.Hostname, rows)
		}
		m[r.Hostname] = r
	}
	return m, nil
}

// rowsMatch runs `node ls` on via and applies check to the rows by
// hostname.
func rowsMatch(via *node, check func(map[string]nodeRow) error) func() error {
	return func() error {
		rows, err := via.rows()
		if err != nil {
			return err
		}
		m, err := byHost(rows)
		if err != nil {
			return err
		}
		if err := check(m); err != nil {
			return fmt.Errorf("%w; node ls on %s: %v", err, via, rows)
		}
		return nil
	}
}

// ---------------------------------------------------------------------------
// A cluster of daemons

type cluster struct {
	t        *testing.T
	base     string
	args     []string // extra flags of every daemon
	managers []*node
	workers  []*node
	nodes    []*node // every daemon started, spares included
	// place, when set, adjusts each node before its flags are set: its
	// command prefix and addresses (see newNetnsCluster), and flags of
	// its own (n.args, put after the cluster's).
	place func(*node)
}

// newCluster starts managers m1..mN and workers w1..wM as separate
// processes and forms a swarm of them through the CLI: `swarm init` on m1,
// then `swarm join` of every other node with the tokens from
// `swarm join-token -q`, each given the list of managers joined so far. It
// returns when every node is Ready and every manager has a manager status.
func newCluster(t *testing.T, managers, workers int) *cluster {
	t.Helper()
	return newClusterArgs(t, managers, workers)
}

// newClusterArgs is newCluster with extra flags for every daemon, e.g.
// --no-docker.
func newClusterArgs(t *testing.T, managers, workers int, daemonArgs ...string) *cluster {
	t.Helper()
	return newClusterPlaced(t, managers, workers, nil, daemonArgs...)
}

// newClusterPlaced is newClusterArgs with a hook that places each node
// (see cluster.place).
func newClusterPlaced(t *testing.T, managers, workers int, place func(*node), daemonArgs ...string) *cluster {
	t.Helper()
	requireE2E(t)
	c := &cluster{t: t, base: tempDir(t), args: daemonArgs, place: place}
	t.Cleanup(c.cleanup)
	for i := range managers {
		c.managers = append(c.managers, c.newNode(fmt.Sprintf("m%d", i+1)))
	}
	for i := range workers {
		c.workers = append(c.workers, c.newNode(fmt.Sprintf("w%d", i+1)))
	}
	for _, n := range c.nodes {
		n.launch()
	}
	for _, n := range c.nodes {
		n.waitAPI()
	}
	if managers == 0 {
		return c
	}
	m1 := c.managers[0]
	m1.mustCLI(t, "swarm", "init", "--listen-addr", m1.addr)
	workerToken := strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", "worker"))
	managerToken := strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", "manager"))
	joined := []string{m1.addr}
	for _, m := range c.managers[1:] {
		m.mustCLI(t, "swarm", "join", "--token", managerToken, "--listen-addr", m.addr, strings.Join(joined, ","))
		joined = append(joined, m.addr)
	}
	for _, w := range c.workers {
		w.mustCLI(t, "swarm", "join", "--token", workerToken, "--listen-addr", w.addr, strings.Join(joined, ","))
	}
	for _, n := range c.nodes {
		si, err := n.swarmInfo()
		if err != nil {
			t.Fatal(err)
		}
		if si.NodeID == "" {
			t.Fatalf("%s: no node ID in info after joining: %+v", n, si)
		}
		n.id = si.NodeID
	}
	c.waitReady(m1, convergeTimeout)
	return c
}

func (c *cluster) newNode(name string) *node {
	n := newNode(c.t, c.base, name)
	// Each node's routing mesh listens on its own loopback address, as
	// separate machines would on theirs.
	n.publishHost = fmt.Sprintf("127.0.0.%d", len(c.nodes)+2)
	if c.place != nil {
		c.place(n)
	}
	n.args = append(append(slices.Clone(c.args), n.args...), "--publish-addr", n.publishHost)
	c.nodes = append(c.nodes, n)
	return n
}

// spare starts a daemon that is in no swarm.
func (c *cluster) spare(name string) *node {
	c.t.Helper()
	n := c.newNode(name)
	n.Start()
	return n
}

// cleanup kills every daemon and the tasks they left running (process
// driver tasks run in sessions of their own and outlive their daemon) and,
// if the test failed, logs the tail of each daemon's log. (tempDir's
// cleanup, registered before, then removes the files.)
func (c *cluster) cleanup() {
	for _, n := range c.nodes {
		n.kill()
	}
	if left := killTaskProcesses(c.base); len(left) > 0 {
		c.t.Logf("killed %d task processes left running under %s", len(left), c.base)
	}
	c.removeCaptureRules()
	if !c.t.Failed() {
		return
	}
	for _, n := range c.nodes {
		c.t.Logf("----- %s (id %s, cluster addr %s): last %d lines of %s -----\n%s",
			n.name, n.id, n.addr, logTailLines, n.logPath, tail(n.logPath, logTailLines))
	}
}

func (c *cluster) node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

func (c *cluster) isManager(n *node) bool { return slices.Contains(c.managers, n) }

// waitReady waits until `node ls` on via lists every node of the cluster
// (managers and workers) as Ready, managers with a Leader/Reachable status,
// workers with none, and exactly one leader.
func (c *cluster) waitReady(via *node, timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, rowsMatch(via, func(m map[string]nodeRow) error {
		leaders := 0
		for _, n := range append(slices.Clone(c.managers), c.workers...) {
			r, ok := m[n.name]
			switch {
			case !ok:
				return fmt.Errorf("%s not listed", n)
			case n.id != "" && r.ID != n.id:
				return fmt.Errorf("%s listed with ID %s, want %s", n, r.ID, n.id)
			case r.Status != "Ready":
				return fmt.Errorf("%s is %s", n, r.Status)
			case c.isManager(n) && r.ManagerStatus != "Leader" && r.ManagerStatus != "Reachable":
				return fmt.Errorf("manager %s has manager status %q", n, r.ManagerStatus)
			case !c.isManager(n) && r.ManagerStatus != "":
				return fmt.Errorf("worker %s has manager status %q", n, r.ManagerStatus)
			}
			if r.ManagerStatus == "Leader" {
				leaders++
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d leaders", leaders)
		}
		return nil
	}))
}

// leader returns the manager that `node ls` on via shows as Leader.
func (c *cluster) leader(via *node) (*node, error) {
	rows, err := via.rows()
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if r.ManagerStatus == "Leader" {
			for _, n := range c.nodes {
				if n.name == r.Hostname {
					return n, nil
				}
			}
			return nil, fmt.Errorf("leader %s is not a node of this test", r.Hostname)
		}
	}
	return nil, fmt.Errorf("no leader in node ls on %s: %v", via, rows)
}

func (c *cluster) mustLeader(via *node) *node {
	c.t.Helper()
	var l *node
	eventually(c.t, convergeTimeout, func() (err error) {
		l, err = c.leader(via)
		return err
	})
	return l
}

// others returns the managers other than the given ones.
func (c *cluster) otherManagers(not ...*node) []*node {
	var out []*node
	for _, m := range c.managers {
		if !slices.Contains(not, m) {
			out = append(out, m)
		}
	}
	return out
}

// containsAny reports whether s contains one of the words, ignoring case.
func containsAny(s string, words ...string) bool {
	s = strings.ToLower(s)
	for _, w := range words {
		if strings.Contains(s, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// removeCaptureRules removes what killed nodes left on this machine: the
// nat chains of those in its namespace (a node stopped by SIGTERM removes
// its own; a namespace's go with it) and their tasks' files in /dev/shm.
func (c *cluster) removeCaptureRules() {
	bin, err := netrules.Detect()
	rules := err == nil && os.Geteuid() == 0
	for _, n := range c.nodes {
		// The node's identity may have changed (swarm leave, restore):
		// the one on its data dir, too.
		ids := []string{n.id}
		var st struct{ NodeID string }
		if b, err := os.ReadFile(filepath.Join(n.dataDir, "swarm", "state.json")); err == nil && json.Unmarshal(b, &st) == nil {
			ids = append(ids, st.NodeID)
		}
		for _, id := range ids {
			if id == "" {
				continue
			}
			// Secret and config files of a killed node's tasks.
			_ = os.RemoveAll(filepath.Join("/dev/shm/flotilla", id))
			if rules && len(n.prefix) == 0 {
				if err := (&netrules.Rules{Bin: bin, Name: netrules.NodeChain(id)}).Remove(); err != nil {
					c.t.Errorf("removing %s's capture rules: %v", n, err)
				}
			}
		}
	}
}
