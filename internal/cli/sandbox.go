package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// Defaults of `flotilla sandbox up`.
const (
	DefaultSandboxManagers = 3
	DefaultSandboxWorkers  = 2
	// DefaultSandboxTimeout bounds each wait of SandboxUp: a daemon's API
	// coming up, and the cluster converging once every node has joined.
	DefaultSandboxTimeout = 60 * time.Second
	// SandboxStateFile is the name of the state file inside the sandbox
	// directory.
	SandboxStateFile = "sandbox.json"

	sandboxLockFile  = "sandbox.lock"
	sandboxMaxNodes  = 64
	sandboxStopGrace = 10 * time.Second
	sandboxKillWait  = 5 * time.Second
	// maxUnixSocketPath is the longest socket path every unix accepts
	// (sun_path is 104 bytes on the BSDs, 108 on Linux, NUL included).
	maxUnixSocketPath = 103
)

// ErrSandboxRunning is returned (wrapped) by SandboxUp when the directory
// already holds a running sandbox.
var ErrSandboxRunning = errors.New("a sandbox is already running")

// SandboxOptions configures SandboxUp. Managers and Workers are taken as
// given (use DefaultSandboxManagers / DefaultSandboxWorkers for the CLI's
// defaults); the other zero values mean "default".
type SandboxOptions struct {
	// Dir holds the state file and one directory per node (data, API
	// socket, daemon.log). Default: DefaultSandboxDir().
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
	// converging). Default: DefaultSandboxTimeout.
	Timeout time.Duration
	// Out receives progress messages. Default: discarded.
	Out io.Writer
	// KeepOnFailure keeps the directory (logs, data) when SandboxUp fails.
	// The daemons are stopped either way.
	KeepOnFailure bool
	// SampleService starts the sample web service (one task per node) once
	// the cluster is up.
	SampleService bool
}

// Sandbox describes a running sandbox; it is what DIR/sandbox.json holds.
type Sandbox struct {
	Dir     string        `json:"dir"`
	Binary  string        `json:"binary"`
	Created time.Time     `json:"created"`
	Nodes   []SandboxNode `json:"nodes"`
}

// SandboxNode is one daemon of a sandbox.
type SandboxNode struct {
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
}

// Host returns the API address of manager-1, the node to point the CLI at.
func (s *Sandbox) Host() string {
	for _, n := range s.Nodes {
		if n.Role == string(swarm.NodeRoleManager) {
			return n.Host
		}
	}
	return ""
}

// Node returns the node of that name.
func (s *Sandbox) Node(name string) (SandboxNode, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return SandboxNode{}, false
}

// Managers returns the manager nodes, in order.
func (s *Sandbox) Managers() []SandboxNode { return s.byRole(swarm.NodeRoleManager) }

// Workers returns the worker nodes, in order.
func (s *Sandbox) Workers() []SandboxNode { return s.byRole(swarm.NodeRoleWorker) }

func (s *Sandbox) byRole(r swarm.NodeRole) []SandboxNode {
	var out []SandboxNode
	for _, n := range s.Nodes {
		if n.Role == string(r) {
			out = append(out, n)
		}
	}
	return out
}

// DefaultSandboxDir is $HOME/.flotilla/sandbox, or
// $TMPDIR/flotilla-sandbox-<uid> when HOME is not set.
func DefaultSandboxDir() string {
	if home := os.Getenv("HOME"); home != "" {
		return filepath.Join(home, ".flotilla", "sandbox")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("flotilla-sandbox-%d", os.Getuid()))
}

// LoadSandbox reads DIR/sandbox.json. The error wraps fs.ErrNotExist when
// there is none.
func LoadSandbox(dir string) (*Sandbox, error) {
	b, err := os.ReadFile(filepath.Join(dir, SandboxStateFile))
	if err != nil {
		return nil, err
	}
	var s Sandbox
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, SandboxStateFile), err)
	}
	return &s, nil
}

func (s *Sandbox) save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, SandboxStateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// running returns the recorded daemons that are still alive.
func (s *Sandbox) running() []SandboxNode {
	var out []SandboxNode
	for _, n := range s.Nodes {
		if nodeAlive(n) {
			out = append(out, n)
		}
	}
	return out
}

// nodeAlive reports whether the recorded PID still runs this node's daemon
// (a PID reused by another program does not count).
func nodeAlive(n SandboxNode) bool {
	if n.PID <= 0 || !processAlive(n.PID) {
		return false
	}
	if args, ok := processArgs(n.PID); ok {
		return slices.Contains(args, n.DataDir)
	}
	return true
}

// sandboxNodeName matches the directories SandboxUp creates.
var sandboxNodeName = regexp.MustCompile(`^(manager|worker)-[0-9]+$`)

// SandboxUp starts opts.Managers + opts.Workers daemons as background
// processes and forms one swarm of them through the public API only:
// `swarm init` on manager-1, join tokens from GET /swarm, then joins of the
// other managers and of the workers, each given every manager joined so far.
// It returns once every node reports ready. On failure it stops whatever it
// started. If DIR already holds a running sandbox the error wraps
// ErrSandboxRunning.
func SandboxUp(ctx context.Context, opts SandboxOptions) (*Sandbox, error) {
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
	if opts.Managers+opts.Workers > sandboxMaxNodes {
		return nil, fmt.Errorf("at most %d nodes, please", sandboxMaxNodes)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultSandboxTimeout
	}
	dir := opts.Dir
	if dir == "" {
		dir = DefaultSandboxDir()
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
	unlock, err := lockSandboxDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if prev, err := LoadSandbox(dir); err == nil {
		if live := prev.running(); len(live) > 0 {
			return nil, fmt.Errorf("%w in %s (%d %s, e.g. %s pid %d); use it with 'export %s=%s', or stop it with 'flotilla sandbox down%s'",
				ErrSandboxRunning, dir, len(live), plural(len(live), "daemon"), live[0].Name, live[0].PID,
				HostEnvVar, prev.Host(), dirFlag(dir))
		}
		fmt.Fprintf(out, "Removing the state of a stopped sandbox in %s\n", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := removeSandboxFiles(dir, nil); err != nil {
		return nil, err
	}

	sb := &Sandbox{Dir: dir, Binary: bin, Created: time.Now().UTC()}
	up := &sandboxStarter{sb: sb, out: out, timeout: timeout, exited: map[string]chan struct{}{}}
	err = up.run(ctx, opts)
	if err == nil && opts.SampleService {
		err = startSampleService(ctx, sb, out, timeout)
	}
	if err != nil {
		serr := stopNodes(sb.Nodes, io.Discard)
		stopTaskProcesses(dir)
		cleanupDocker(sb)
		if serr != nil {
			err = fmt.Errorf("%w\n(cleaning up: %v)", err, serr)
		}
		if !opts.KeepOnFailure {
			_ = removeSandboxFiles(dir, sb.Nodes)
			if createdDir {
				_ = os.Remove(filepath.Join(dir, sandboxLockFile))
				_ = os.Remove(dir)
			}
		} else {
			_ = os.Remove(filepath.Join(dir, SandboxStateFile))
		}
		return nil, err
	}
	return sb, nil
}

// sandboxStarter carries the state of one SandboxUp.
type sandboxStarter struct {
	sb      *Sandbox
	out     io.Writer
	timeout time.Duration
	exited  map[string]chan struct{} // closed when that daemon exits
}

func (u *sandboxStarter) run(ctx context.Context, opts SandboxOptions) error {
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
		sb.Nodes = append(sb.Nodes, SandboxNode{
			Name:      name,
			Role:      string(role),
			Host:      "unix://" + sock,
			Socket:    sock,
			DataDir:   nodeDir,
			LogFile:   filepath.Join(nodeDir, "daemon.log"),
			SwarmAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])),
			SwarmPort: ports[i],
		})
	}

	fmt.Fprintf(u.out, "Starting %d %s and %d %s in %s\n", opts.Managers, plural(opts.Managers, "manager"),
		opts.Workers, plural(opts.Workers, "worker"), sb.Dir)
	for i := range sb.Nodes {
		if err := u.start(&sb.Nodes[i], opts.DaemonArgs); err != nil {
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

// start launches one daemon in its own session, output to its log file.
func (u *sandboxStarter) start(n *SandboxNode, extra []string) error {
	if err := os.MkdirAll(n.DataDir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{"daemon", "--data-dir", n.DataDir, "-H", n.Host, "--hostname", n.Name}, extra...)
	cmd := exec.Command(u.sb.Binary, args...)
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
func (u *sandboxStarter) waitAPI(ctx context.Context, n SandboxNode) error {
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
func (u *sandboxStarter) join(ctx context.Context, n *SandboxNode, token string, remotes []string) error {
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
func (u *sandboxStarter) waitConverged(ctx context.Context, api apiClient) error {
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

func (u *sandboxStarter) unready(ctx context.Context, api apiClient) ([]string, error) {
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
func (u *sandboxStarter) nodeError(n SandboxNode, what string, err error) error {
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

// SandboxDown stops the daemons recorded in DIR/sandbox.json (SIGTERM to
// each process group, SIGKILL after a grace period) and removes DIR. It
// succeeds when there is nothing to stop.
func SandboxDown(dir string) error {
	_, err := sandboxDown(dir, io.Discard)
	return err
}

// sandboxDown returns whether there was a sandbox to take down.
func sandboxDown(dir string, out io.Writer) (bool, error) {
	if dir == "" {
		dir = DefaultSandboxDir()
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
	load := func() (*Sandbox, error) {
		sb, err := LoadSandbox(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return &Sandbox{Dir: dir}, nil
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
	unlock, err := lockSandboxDir(dir)
	if err != nil {
		return false, err
	}
	if sb, err = load(); err != nil { // it may have changed before we got the lock
		unlock()
		return false, err
	}
	removeSandboxServices(sb, out)
	if err := stopNodes(sb.Nodes, out); err != nil {
		unlock()
		return true, err
	}
	stopTaskProcesses(dir)
	cleanupDocker(sb)
	err = removeSandboxFiles(dir, sb.Nodes)
	unlock()
	_ = os.Remove(filepath.Join(dir, sandboxLockFile))
	if err == nil {
		if rmErr := os.Remove(dir); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
			fmt.Fprintf(out, "Left %s in place: it holds files that are not the sandbox's\n", dir)
		}
	}
	return true, err
}

// looksLikeSandbox reports whether dir holds sandbox state (so that down
// never deletes an unrelated directory).
func looksLikeSandbox(dir string, sb *Sandbox) bool {
	if len(sb.Nodes) > 0 {
		return true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.IsDir() && sandboxNodeName.MatchString(e.Name()) {
			return true
		}
	}
	return false
}

// removeSandboxFiles removes the state file and the node directories (those
// recorded and any other manager-N / worker-N holding a daemon.log).
func removeSandboxFiles(dir string, nodes []SandboxNode) error {
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
		if !e.IsDir() || !sandboxNodeName.MatchString(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(p, "daemon.log")); err == nil {
			errs = append(errs, os.RemoveAll(p))
		}
	}
	for _, f := range []string{SandboxStateFile, SandboxStateFile + ".tmp"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopNodes sends SIGTERM to each live daemon's process group, waits for
// them to exit, and SIGKILLs what is left after the grace period.
func stopNodes(nodes []SandboxNode, out io.Writer) error {
	var live []SandboxNode
	for _, n := range nodes {
		if nodeAlive(n) {
			live = append(live, n)
		}
	}
	for _, n := range live {
		fmt.Fprintf(out, "Stopping %s (pid %d)\n", n.Name, n.PID)
		_ = terminateGroup(n.PID)
	}
	left := waitExit(live, sandboxStopGrace)
	for _, n := range left {
		fmt.Fprintf(out, "%s (pid %d) did not stop within %s; killing it\n", n.Name, n.PID, sandboxStopGrace)
		_ = killGroup(n.PID)
	}
	left = waitExit(left, sandboxKillWait)
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
func waitExit(nodes []SandboxNode, timeout time.Duration) []SandboxNode {
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		var left []SandboxNode
		for _, n := range nodes {
			if nodeAlive(n) {
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

func dirFlag(dir string) string {
	if def, err := filepath.Abs(DefaultSandboxDir()); err == nil && def == dir {
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

func newSandboxCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local multi-node cluster for experiments and tests",
		Long: "Run a local cluster: several flotilla daemons on this machine, each with its own\n" +
			"data directory, API socket and loopback cluster port, formed into one swarm\n" +
			"through the API, as a user would.",
		Args: groupArgs,
		RunE: showHelp,
	}
	cmd.AddCommand(newSandboxUpCommand(env), newSandboxDownCommand(env), newSandboxStatusCommand(env))
	return cmd
}

func newSandboxUpCommand(env *cliEnv) *cobra.Command {
	opts := SandboxOptions{Managers: DefaultSandboxManagers, Workers: DefaultSandboxWorkers, SampleService: true}
	cmd := &cobra.Command{
		Use:   "up [OPTIONS]",
		Short: "Start a local cluster",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		o := opts
		o.Out = out
		sb, err := SandboxUp(ctx, o)
		if err != nil {
			if ctx.Err() != nil && cmd.Context().Err() == nil {
				return errors.New("sandbox up interrupted; the daemons it had started were stopped")
			}
			return err
		}
		prog := runnableProg(rootName(cmd))
		fmt.Fprintf(out, "\nSandbox is up: %d %s and %d %s.\nState: %s; daemon logs: %s\n\n",
			len(sb.Managers()), plural(len(sb.Managers()), "manager"), len(sb.Workers()), plural(len(sb.Workers()), "worker"),
			filepath.Join(sb.Dir, SandboxStateFile), filepath.Join(sb.Dir, "<node>", "daemon.log"))
		if api, err := newAPIClient(sb.Host()); err == nil {
			var table bytes.Buffer
			if listNodes(ctx, api, &table, nil, "", false) == nil {
				_, _ = table.WriteTo(out)
				fmt.Fprintln(out)
			}
			_ = api.Close()
		}
		if o.SampleService {
			if api, err := newAPIClient(sb.Host()); err == nil {
				var table bytes.Buffer
				if printSampleTasks(ctx, api, &table) == nil {
					fmt.Fprintf(out, "The sample service %q runs one task per node:\n\n", SampleServiceName)
					_, _ = table.WriteTo(out)
					fmt.Fprintf(out, "\nEach task answers on 127.0.0.1:%d+slot, e.g.\n\n    curl http://127.0.0.1:%d/\n\n", SamplePortBase, SamplePortBase+1)
				}
				_ = api.Close()
			}
		}
		fmt.Fprintf(out, "Point the %s CLI at it:\n\n    export %s=%s\n    %s node ls\n    %s service ps %s\n\n", rootName(cmd), HostEnvVar, sb.Host(), prog, prog, SampleServiceName)
		fmt.Fprintf(out, "or the docker CLI:\n\n    export DOCKER_HOST=%s\n    docker node ls\n\n", sb.Host())
		fmt.Fprintf(out, "Stop it with: %s sandbox down%s\n", prog, dirFlag(sb.Dir))
		return nil
	})
	flags := cmd.Flags()
	flags.IntVar(&opts.Managers, "managers", DefaultSandboxManagers, "Number of manager daemons")
	flags.IntVar(&opts.Workers, "workers", DefaultSandboxWorkers, "Number of worker daemons")
	flags.StringVar(&opts.Dir, "dir", DefaultSandboxDir(), "Directory for the sandbox's state, data and logs")
	flags.StringArrayVar(&opts.DaemonArgs, "daemon-arg", nil, "Extra flag for every daemon (repeatable), e.g. --daemon-arg=--log-level=debug")
	flags.DurationVar(&opts.Timeout, "timeout", DefaultSandboxTimeout, "How long to wait for each daemon and for the cluster to become ready")
	flags.BoolVar(&opts.KeepOnFailure, "keep-on-failure", false, "Keep the directory (logs) when starting fails")
	flags.BoolVar(&opts.SampleService, "sample-service", true, "Start the sample web service, one task per node")
	return cmd
}

func newSandboxDownCommand(env *cliEnv) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down [OPTIONS]",
		Short: "Stop the local cluster and remove its directory",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		found, err := sandboxDown(abs, out)
		if err != nil {
			return err
		}
		if !found {
			fmt.Fprintf(out, "No sandbox in %s; nothing to do.\n", abs)
			return nil
		}
		fmt.Fprintf(out, "Sandbox in %s stopped and removed.\n", abs)
		return nil
	})
	cmd.Flags().StringVar(&dir, "dir", DefaultSandboxDir(), "Directory of the sandbox")
	return cmd
}

func newSandboxStatusCommand(env *cliEnv) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "status [OPTIONS]",
		Short: "Show the daemons of the local cluster",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		sb, err := LoadSandbox(abs)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(out, "No sandbox in %s.\n", abs)
			return nil
		}
		if err != nil {
			return err
		}
		rows := make([]map[string]string, 0, len(sb.Nodes))
		for _, n := range sb.Nodes {
			state := "stopped"
			if nodeAlive(n) {
				state = "running"
			}
			rows = append(rows, map[string]string{
				"Name": n.Name, "Role": n.Role, "PID": strconv.Itoa(n.PID), "State": state,
				"ClusterAddr": n.SwarmAddr, "Host": n.Host,
			})
		}
		header := map[string]string{"Name": "NAME", "Role": "ROLE", "PID": "PID", "State": "STATE", "ClusterAddr": "CLUSTER ADDRESS", "Host": "API"}
		lf := listFormat{table: true, text: "{{.Name}}\t{{.Role}}\t{{.PID}}\t{{.State}}\t{{.ClusterAddr}}\t{{.Host}}"}
		return writeList(out, lf, header, rows)
	})
	cmd.Flags().StringVar(&dir, "dir", DefaultSandboxDir(), "Directory of the sandbox")
	return cmd
}
