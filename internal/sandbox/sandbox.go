// Package sandbox runs a local cluster: several flotilla daemons on this
// machine, each with its own data directory, API socket and loopback
// cluster port, formed into one swarm through the public API, as a user
// would. `flotilla sandbox` and the bench commands use it.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Defaults of `flotilla sandbox up`.
const (
	DefaultManagers = 3
	DefaultWorkers  = 2
	// DefaultTimeout bounds each wait of Up: a daemon's API coming up,
	// and the cluster converging once every node has joined.
	DefaultTimeout = 60 * time.Second
	// StateFile is the name of the state file inside the sandbox
	// directory.
	StateFile = "sandbox.json"

	lockFile  = "sandbox.lock"
	maxNodes  = 64
	stopGrace = 10 * time.Second
	killWait  = 5 * time.Second
	// maxUnixSocketPath is the longest socket path every unix accepts
	// (sun_path is 104 bytes on the BSDs, 108 on Linux, NUL included).
	maxUnixSocketPath = 103
)

// ErrRunning is returned (wrapped) by Up when the directory already
// holds a running sandbox.
var ErrRunning = errors.New("a sandbox is already running")

// Options configures Up. Managers and Workers are taken as given (use
// DefaultManagers / DefaultWorkers for the CLI's defaults); the other zero
// values mean "default".
type Options struct {
	// Dir holds the state file and one directory per node (data, API
	// socket, daemon.log). Default: DefaultDir().
	Dir string
	// Managers is the number of manager daemons, at least 1.
	Managers int
	// Workers is the number of worker daemons, 0 or more.
	Workers int
	// Binary is the flotilla executable whose `daemon` command is started.
	// Default: os.Executable() (right for the CLI; tests should set it).
	Binary string
	// DaemonArgs are extra flags appended to every daemon's command line,
	// after `daemon --data-dir D -H unix://S --hostname N`.
	DaemonArgs []string
	// Timeout bounds each wait (a daemon's API coming up, the cluster
	// converging). Default: DefaultTimeout.
	Timeout time.Duration
	// Out receives progress messages. Default: discarded.
	Out io.Writer
	// KeepOnFailure keeps the directory (logs, data) when Up fails.
	// The daemons are stopped either way.
	KeepOnFailure bool
	// SampleService deploys the sample stack (examples/sample/compose.yml)
	// once the cluster is up.
	SampleService bool
	// SampleDriver is the task driver of the sample: SampleDriverDocker,
	// SampleDriverProcess, or empty for docker when every node runs
	// Docker, else process.
	SampleDriver string
	// Hosts, when given, place node i on Hosts[i]: a separate host
	// (internal/hostsim), its daemon run through Exec, its cluster and
	// published ports on Addr.
	Hosts []Host
}

// Host is a place for a node other than this machine's loopback.
type Host struct {
	Exec []string // command prefix, e.g. ip netns exec NS
	Addr string
}

// Cluster describes a running sandbox; it is what DIR/sandbox.json holds.
type Cluster struct {
	Dir     string    `json:"dir"`
	Binary  string    `json:"binary"`
	Created time.Time `json:"created"`
	Nodes   []Node    `json:"nodes"`
	// SampleImage is the Docker image Up made for the sample, if any.
	SampleImage string `json:"sample_image,omitempty"`
}

// Node is one daemon of a sandbox.
type Node struct {
	Name string `json:"name"` // manager-1, ..., worker-1, ...
	Role string `json:"role"` // "manager" or "worker"
	// PID of the daemon; it leads its own session and process group.
	PID     int    `json:"pid"`
	Host    string `json:"host"`     // unix://<Socket>, for -H / FLOTILLA_HOST / DOCKER_HOST
	Socket  string `json:"socket"`   // API socket path
	DataDir string `json:"data_dir"` // --data-dir
	LogFile string `json:"log_file"` // the daemon's stdout and stderr
	// SwarmAddr is the node's cluster address (listen = advertise),
	// 127.0.0.1:SwarmPort.
	SwarmAddr string `json:"swarm_addr"`
	SwarmPort int    `json:"swarm_port"`
	NodeID    string `json:"node_id,omitempty"`
	// PublishHost is where the node's routing mesh listens for published
	// ports: each node of the sandbox has its own loopback address, as
	// separate machines have theirs.
	PublishHost string `json:"publish_host,omitempty"`
}

// Host returns the API address of manager-1, the node to point the CLI at.
func (s *Cluster) Host() string {
	for _, n := range s.Nodes {
		if n.Role == string(swarm.NodeRoleManager) {
			return n.Host
		}
	}
	return ""
}

// Node returns the node of that name.
func (s *Cluster) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Managers returns the manager nodes, in order.
func (s *Cluster) Managers() []Node { return s.byRole(swarm.NodeRoleManager) }

// Workers returns the worker nodes, in order.
func (s *Cluster) Workers() []Node { return s.byRole(swarm.NodeRoleWorker) }

func (s *Cluster) byRole(r swarm.NodeRole) []Node {
	var out []Node
	for _, n := range s.Nodes {
		if n.Role == string(r) {
			out = append(out, n)
		}
	}
	return out
}

// DefaultDir is $HOME/.flotilla/sandbox, or
// $TMPDIR/flotilla-sandbox-<uid> when HOME is not set.
func DefaultDir() string {
	if home := os.Getenv("HOME"); home != "" {
		return filepath.Join(home, ".flotilla", "sandbox")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("flotilla-sandbox-%d", os.Getuid()))
}

// Load reads DIR/sandbox.json. The error wraps fs.ErrNotExist when
// there is none.
func Load(dir string) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	var s Cluster
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, StateFile), err)
	}
	return &s, nil
}

func (s *Cluster) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, StateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// running returns the recorded daemons that are still alive.
func (s *Cluster) running() []Node {
	var out []Node
	for _, n := range s.Nodes {
		if n.Alive() {
			out = append(out, n)
		}
	}
	return out
}

// Alive reports whether the recorded PID still runs this node's daemon
// (a PID reused by another program does not count).
func (n Node) Alive() bool {
	if n.PID <= 0 || !processAlive(n.PID) {
		return false
	}
	if args, ok := processArgs(n.PID); ok {
		return slices.Contains(args, n.DataDir)
	}
	return true
}

// nodeDirName matches the directories Up creates.
var nodeDirName = regexp.MustCompile(`^(manager|worker)-[0-9]+$`)

// Up starts opts.Managers + opts.Workers daemons as background processes
// and forms one swarm of them through the public API only:
// `swarm init` on manager-1, join tokens from GET /swarm, then joins of the
// other managers and of the workers, each given every manager joined so far.
// It returns once every node reports ready. On failure it stops whatever it
// started. If DIR already holds a running sandbox the error wraps
// ErrRunning.
func Up(ctx context.Context, opts Options) (*Cluster, error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	if opts.Managers < 1 {
		return nil, errors.New("a sandbox needs at least one manager")
	}
	if opts.Workers < 0 {
		return nil, errors.New("the number of workers cannot be negative")
	}
	if opts.Managers+opts.Workers > maxNodes {
		return nil, fmt.Errorf("at most %d nodes, please", maxNodes)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dir := opts.Dir
	if dir == "" {
		dir = DefaultDir()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bin := opts.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("finding the flotilla executable: %w", err)
		}
	}
	if !filepath.IsAbs(bin) {
		if bin, err = exec.LookPath(bin); err != nil {
			return nil, err
		}
		if bin, err = filepath.Abs(bin); err != nil {
			return nil, err
		}
	}
	if sock := filepath.Join(dir, fmt.Sprintf("manager-%d", opts.Managers+opts.Workers), "api.sock"); len(sock) > maxUnixSocketPath {
		return nil, fmt.Errorf("sandbox directory %s is too deep: socket paths like %s exceed the %d bytes unix allows; use a shorter --dir", dir, sock, maxUnixSocketPath)
	}

	_, statErr := os.Stat(dir)
	createdDir := errors.Is(statErr, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if prev, err := Load(dir); err == nil {
		if live := prev.running(); len(live) > 0 {
			return nil, fmt.Errorf("%w in %s (%d %s, e.g. %s pid %d); use it with 'export %s=%s', or stop it with 'flotilla sandbox down%s'",
				ErrRunning, dir, len(live), plural(len(live), "daemon"), live[0].Name, live[0].PID,
				hostEnvVar, prev.Host(), DirFlag(dir))
		}
		fmt.Fprintf(out, "Removing the state of a stopped sandbox in %s\n", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := removeFiles(dir, nil); err != nil {
		return nil, err
	}

	sb := &Cluster{Dir: dir, Binary: bin, Created: time.Now().UTC()}
	up := &starter{sb: sb, out: out, timeout: timeout, exited: map[string]chan struct{}{}}
	err = up.run(ctx, opts)
	if err == nil && opts.SampleService {
		err = deploySample(ctx, sb, out, opts.SampleDriver, timeout)
	}
	if err != nil {
		serr := stopNodes(sb.Nodes, io.Discard)
		stopTaskProcesses(dir)
		cleanupDocker(sb)
		removeTaskFiles(sb)
		if serr != nil {
			err = fmt.Errorf("%w\n(cleaning up: %v)", err, serr)
		}
		if !opts.KeepOnFailure {
			_ = removeFiles(dir, sb.Nodes)
			if createdDir {
				_ = os.Remove(filepath.Join(dir, lockFile))
				_ = os.Remove(dir)
			}
		} else {
			_ = os.Remove(filepath.Join(dir, StateFile))
		}
		return nil, err
	}
	return sb, nil
}

// starter carries the state of one Up.
type starter struct {
	sb      *Cluster
	out     io.Writer
	timeout time.Duration
	exited  map[string]chan struct{} // closed when that daemon exits
	prefix  [][]string               // node i's command prefix (Options.Hosts)
}

func (u *starter) run(ctx context.Context, opts Options) error {
	sb := u.sb
	total := opts.Managers + opts.Workers
	ports, err := freePorts(total)
	if err != nil {
		return err
	}
	for i := 0; i < total; i++ {
		role, name := swarm.NodeRoleManager, fmt.Sprintf("manager-%d", i+1)
		if i >= opts.Managers {
			role, name = swarm.NodeRoleWorker, fmt.Sprintf("worker-%d", i-opts.Managers+1)
		}
		nodeDir := filepath.Join(sb.Dir, name)
		sock := filepath.Join(nodeDir, "api.sock")
		host, publish := "127.0.0.1", fmt.Sprintf("127.0.0.%d", i+2)
		if i < len(opts.Hosts) {
			host, publish = opts.Hosts[i].Addr, opts.Hosts[i].Addr
			u.prefix = append(u.prefix, opts.Hosts[i].Exec)
		}
		sb.Nodes = append(sb.Nodes, Node{
			Name:        name,
			Role:        string(role),
			Host:        "unix://" + sock,
			Socket:      sock,
			DataDir:     nodeDir,
			LogFile:     filepath.Join(nodeDir, "daemon.log"),
			SwarmAddr:   net.JoinHostPort(host, strconv.Itoa(ports[i])),
			SwarmPort:   ports[i],
			PublishHost: publish,
		})
	}

	fmt.Fprintf(u.out, "Starting %d %s and %d %s in %s\n", opts.Managers, plural(opts.Managers, "manager"),
		opts.Workers, plural(opts.Workers, "worker"), sb.Dir)
	for i := range sb.Nodes {
		if err := u.start(i, opts.DaemonArgs); err != nil {
			return err
		}
		// Record every start at once, so `sandbox down` can clean up
		// even if this process dies half way.
		if err := sb.save(); err != nil {
			return err
		}
		n := sb.Nodes[i]
		fmt.Fprintf(u.out, "  %-10s pid %-7d cluster address %s\n", n.Name, n.PID, n.SwarmAddr)
	}
	for _, n := range sb.Nodes {
		if err := u.waitAPI(ctx, n); err != nil {
			return err
		}
	}

	first := &sb.Nodes[0]
	api, err := newAPIClient(first.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	fmt.Fprintf(u.out, "Initializing the swarm on %s\n", first.Name)
	res, err := api.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: first.SwarmAddr, AdvertiseAddr: first.SwarmAddr})
	if err != nil {
		return u.nodeError(*first, "swarm init", err)
	}
	first.NodeID = res.NodeID
	sw, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return u.nodeError(*first, "reading the join tokens", err)
	}
	tokens := sw.Swarm.JoinTokens
	if tokens.Manager == "" || tokens.Worker == "" {
		return fmt.Errorf("%s: GET /swarm returned no join tokens", first.Name)
	}

	remotes := []string{first.SwarmAddr}
	for i := 1; i < len(sb.Nodes); i++ {
		n := &sb.Nodes[i]
		token := tokens.Worker
		if n.Role == string(swarm.NodeRoleManager) {
			token = tokens.Manager
		}
		if err := u.join(ctx, n, token, remotes); err != nil {
			return err
		}
		if n.Role == string(swarm.NodeRoleManager) {
			remotes = append(remotes, n.SwarmAddr)
		}
	}
	if err := sb.save(); err != nil {
		return err
	}
	if err := u.waitConverged(ctx, api); err != nil {
		return err
	}
	return sb.save()
}

// start launches node i's daemon in its own session, output to its log
// file.
func (u *starter) start(i int, extra []string) error {
	n := &u.sb.Nodes[i]
	if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"daemon", "--data-dir", n.DataDir, "-H", n.Host, "--hostname", n.Name}
	if n.PublishHost != "" {
		args = append(args, "--publish-addr", n.PublishHost)
	}
	args = append(args, extra...)
	cmd := exec.Command(u.sb.Binary, args...)
	if i < len(u.prefix) {
		p := u.prefix[i]
		cmd = exec.Command(p[0], append(append(p[1:len(p):len(p)], u.sb.Binary), args...)...)
	}
	cmd.Dir = n.DataDir
	cmd.Stdout = logf
	cmd.Stderr = logf
	setNewSession(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", n.Name, err)
	}
	n.PID = cmd.Process.Pid
	exited := make(chan struct{})
	u.exited[n.Name] = exited
	// Reap the daemon if it dies while we are still around.
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	return nil
}

// waitAPI polls the node's /_ping until it answers, the daemon exits, or
// the timeout passes.
func (u *starter) waitAPI(ctx context.Context, n Node) error {
	api, err := newAPIClient(n.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	deadline := time.NewTimer(u.timeout)
	defer deadline.Stop()
	delay := 10 * time.Millisecond
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := api.Ping(pctx, client.PingOptions{})
		cancel()
		if err == nil {
			return nil
		}
		retry := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			retry.Stop()
			return ctx.Err()
		case <-u.exited[n.Name]:
			retry.Stop()
			return fmt.Errorf("%s exited before its API came up%s", n.Name, logTail(n.LogFile))
		case <-deadline.C:
			retry.Stop()
			return fmt.Errorf("%s: no answer on %s after %s (last error: %v)%s", n.Name, n.Host, u.timeout, err, logTail(n.LogFile))
		case <-retry.C:
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// join makes n join the swarm through the given managers and records its
// node ID.
func (u *starter) join(ctx context.Context, n *Node, token string, remotes []string) error {
	api, err := newAPIClient(n.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	_, err = api.SwarmJoin(ctx, client.SwarmJoinOptions{
		ListenAddr:    n.SwarmAddr,
		AdvertiseAddr: n.SwarmAddr,
		RemoteAddrs:   append([]string(nil), remotes...),
		JoinToken:     token,
	})
	if err != nil {
		return u.nodeError(*n, "swarm join", err)
	}
	ir, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return u.nodeError(*n, "info after join", err)
	}
	n.NodeID = ir.Info.Swarm.NodeID
	fmt.Fprintf(u.out, "%s joined as a %s\n", n.Name, n.Role)
	return nil
}

// waitConverged polls the node list on manager-1 until every node is ready
// (and every manager has a manager status).
func (u *starter) waitConverged(ctx context.Context, api client.APIClient) error {
	fmt.Fprintln(u.out, "Waiting for every node to be ready")
	deadline := time.NewTimer(u.timeout)
	defer deadline.Stop()
	delay := 20 * time.Millisecond
	for {
		pending, err := u.unready(ctx, api)
		if err == nil && len(pending) == 0 {
			return nil
		}
		retry := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			retry.Stop()
			return ctx.Err()
		case <-deadline.C:
			retry.Stop()
			if err != nil {
				return fmt.Errorf("the swarm did not become ready within %s: %v", u.timeout, err)
			}
			return fmt.Errorf("the swarm did not become ready within %s: not ready: %s", u.timeout, strings.Join(pending, ", "))
		case <-retry.C:
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

func (u *starter) unready(ctx context.Context, api client.APIClient) ([]string, error) {
	res, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, err
	}
	byID := map[string]swarm.Node{}
	for _, n := range res.Items {
		byID[n.ID] = n
	}
	var pending []string
	for _, want := range u.sb.Nodes {
		n, ok := byID[want.NodeID]
		switch {
		case !ok:
			pending = append(pending, want.Name+" (not listed)")
		case n.Status.State != swarm.NodeStateReady:
			pending = append(pending, fmt.Sprintf("%s (%s)", want.Name, n.Status.State))
		case want.Role == string(swarm.NodeRoleManager) && n.ManagerStatus == nil:
			pending = append(pending, want.Name+" (no manager status)")
		}
	}
	return pending, nil
}

// nodeError decorates an API error with the daemon's log when it has died.
func (u *starter) nodeError(n Node, what string, err error) error {
	select {
	case <-u.exited[n.Name]:
		return fmt.Errorf("%s: %s: %w (the daemon exited)%s", n.Name, what, err, logTail(n.LogFile))
	default:
		return fmt.Errorf("%s: %s: %w", n.Name, what, err)
	}
}

// logTail returns the last lines of a log file, formatted for an error
// message, or "" when there is nothing to show.
func logTail(path string) string {
	const maxBytes, maxLines = 4096, 15
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-maxBytes, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return fmt.Sprintf(" (%s is empty)", path)
	}
	return fmt.Sprintf("\nlast lines of %s:\n    %s", path, strings.Join(lines, "\n    "))
}

// freePorts reserves n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Down stops the daemons recorded in DIR/sandbox.json (SIGTERM to each
// process group, SIGKILL after a grace period) and removes DIR. It succeeds
// when there is nothing to stop.
func Down(dir string) error {
	_, err := TearDown(dir, io.Discard)
	return err
}

// TearDown is Down reporting its progress to out; it returns whether there
// was a sandbox to take down.
func TearDown(dir string, out io.Writer) (bool, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	load := func() (*Cluster, error) {
		sb, err := Load(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return &Cluster{Dir: dir}, nil
		}
		return sb, err
	}
	sb, err := load()
	if err != nil {
		return false, err
	}
	if !looksLikeSandbox(dir, sb) {
		return false, nil
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return false, err
	}
	if sb, err = load(); err != nil { // it may have changed before we got the lock
		unlock()
		return false, err
	}
	removeSample(sb, out)
	removeServices(sb, out)
	if err := stopNodes(sb.Nodes, out); err != nil {
		unlock()
		return true, err
	}
	stopTaskProcesses(dir)
	cleanupDocker(sb)
	removeTaskFiles(sb)
	err = removeFiles(dir, sb.Nodes)
	unlock()
	_ = os.Remove(filepath.Join(dir, lockFile))
	if err == nil {
		if rmErr := os.Remove(dir); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			fmt.Fprintf(out, "Left %s in place: it holds files that are not the sandbox's\n", dir)
		}
	}
	return true, err
}

// looksLikeSandbox reports whether dir holds sandbox state (so that down
// never deletes an unrelated directory).
func looksLikeSandbox(dir string, sb *Cluster) bool {
	if len(sb.Nodes) > 0 {
		return true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() && nodeDirName.MatchString(e.Name()) {
			return true
		}
	}
	return false
}

// removeFiles removes the state file and the node directories (those
// recorded and any other manager-N / worker-N holding a daemon.log).
func removeFiles(dir string, nodes []Node) error {
	var errs []error
	for _, n := range nodes {
		if n.DataDir != "" && filepath.Dir(n.DataDir) == dir {
			errs = append(errs, os.RemoveAll(n.DataDir))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		if !e.IsDir() || !nodeDirName.MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(p, "daemon.log")); err == nil {
			errs = append(errs, os.RemoveAll(p))
		}
	}
	for _, f := range []string{StateFile, StateFile + ".tmp"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopNodes sends SIGTERM to each live daemon's process group, waits for
// them to exit, and SIGKILLs what is left after the grace period.
func stopNodes(nodes []Node, out io.Writer) error {
	var live []Node
	for _, n := range nodes {
		if n.Alive() {
			live = append(live, n)
		}
	}
	for _, n := range live {
		fmt.Fprintf(out, "Stopping %s (pid %d)\n", n.Name, n.PID)
		_ = terminateGroup(n.PID)
	}
	left := waitExit(live, stopGrace)
	for _, n := range left {
		fmt.Fprintf(out, "%s (pid %d) did not stop within %s; killing it\n", n.Name, n.PID, stopGrace)
		_ = killGroup(n.PID)
	}
	left = waitExit(left, killWait)
	// Stragglers the daemons may have spawned in their groups.
	for _, n := range live {
		_ = killGroup(n.PID)
	}
	if len(left) > 0 {
		var names []string
		for _, n := range left {
			names = append(names, fmt.Sprintf("%s (pid %d)", n.Name, n.PID))
		}
		return fmt.Errorf("could not stop %s", strings.Join(names, ", "))
	}
	return nil
}

// waitExit polls until the daemons have exited or the timeout passes, and
// returns those still running.
func waitExit(nodes []Node, timeout time.Duration) []Node {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		var left []Node
		for _, n := range nodes {
			if n.Alive() {
				left = append(left, n)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		nodes = left
		time.Sleep(delay) // polling interval, bounded by the deadline
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// DirFlag is the --dir flag that names dir to the sandbox commands, with a
// leading space, or "" for the default directory: for printed hints.
func DirFlag(dir string) string {
	if def, err := filepath.Abs(DefaultDir()); err == nil && def == dir {
		return ""
	}
	return " --dir " + shellQuote(dir)
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r == '+' || r == '=' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// hostEnvVar is the CLI's cli.HostEnvVar, named in hints (this package
// cannot import the CLI, which imports it).
const hostEnvVar = "FLOTILLA_HOST"

// newAPIClient builds a client of a node's API. The API version is
// negotiated with the daemon's /_ping on first use.
func newAPIClient(host string) (*client.Client, error) {
	return client.New(client.WithHost(host), client.WithUserAgent("flotilla-sandbox"))
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
