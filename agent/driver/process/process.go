//go:build unix

package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Driver runs tasks as supervised processes. It holds no per-task state in
// memory: everything is in the task directories under Options.Root.
type Driver struct {
	root    string
	shim    string
	volumes string // named volumes' directory; "" = none
}

var (
	_ driver.Driver        = (*Driver)(nil)
	_ driver.Lister        = (*Driver)(nil)
	_ driver.HealthChecker = (*Driver)(nil)
)

// How long Start waits for the shim to report the program running, and how
// long Stop waits for a killed task to be reaped, at most.
const (
	startTimeout = 30 * time.Second
	killTimeout  = 10 * time.Second
)

// New returns a driver keeping its tasks under opts.Root (created if
// needed).
func New(opts Options) (*Driver, error) {
	if opts.Root == "" {
		return nil, errors.New("process driver: Options.Root is required")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("process driver: %w", err)
	}
	shim := opts.ShimBinary
	if shim == "" {
		if shim, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("process driver: find own executable for the shim: %w", err)
		}
	}
	vols := opts.VolumesDir
	if vols != "" {
		if vols, err = filepath.Abs(vols); err != nil {
			return nil, err
		}
	}
	return &Driver{root: root, shim: shim, volumes: vols}, nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Root is the directory holding the task directories.
func (d *Driver) Root() string { return d.root }

func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\x00") && len(id) <= 200
}

// taskDir is where a handle's task lives: Extra["dir"] when it names a
// directory for this task (so a changed Root does not lose old tasks),
// otherwise Root/ID.
func (d *Driver) taskDir(h driver.Handle) (string, error) {
	if !validID(h.ID) {
		return "", errdefs.Invalid("process driver: bad handle ID %q", h.ID)
	}
	if dir := h.Extra["dir"]; dir != "" && filepath.IsAbs(dir) && filepath.Base(dir) == h.ID {
		return filepath.Clean(dir), nil
	}
	return filepath.Join(d.root, h.ID), nil
}

// Start implements driver.Driver.
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (driver.Handle, error) {
	if err := spec.Validate(); err != nil {
		return driver.Handle{}, err
	}
	if !validID(spec.TaskID) {
		return driver.Handle{}, errdefs.Invalid("process driver: task ID %q cannot name a directory", spec.TaskID)
	}
	if spec.Dir != "" {
		if fi, err := os.Stat(spec.Dir); err != nil || !fi.IsDir() {
			return driver.Handle{}, errdefs.Invalid("task %s: working directory %s does not exist on this node", spec.TaskID, spec.Dir)
		}
	}
	pathEnv := envValue(spec.Env, "PATH")
	if pathEnv == "" {
		if pathEnv = os.Getenv("PATH"); pathEnv == "" {
			pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		}
	}
	argv, err := resolveProgram(spec, pathEnv)
	if err != nil {
		return driver.Handle{}, err
	}
	if err := d.checkMounts(spec); err != nil {
		return driver.Handle{}, err
	}
	cfg := shimConfig{TaskID: spec.TaskID, ServiceID: spec.ServiceID, ServiceName: spec.ServiceName,
		NodeID: spec.NodeID, Dir: spec.Dir, Labels: spec.Labels}
	home := os.Getenv("HOME")
	if spec.User != "" {
		if cfg.UID, cfg.GID, cfg.Groups, home, err = resolveUser(spec.User); err != nil {
			return driver.Handle{}, errdefs.Invalid("task %s: user %q: %v", spec.TaskID, spec.User, err)
		}
	}
	if home == "" {
		home = "/"
	}
	cfg.Env = append([]string{"PATH=" + pathEnv, "HOME=" + home}, spec.Env...)
	if hc := spec.Healthcheck; hc.Runnable() {
		full := hc.WithDefaults()
		cfg.Health = &full
	}
	ports, portEnv, err := allocatePorts(spec.Ports)
	if err != nil {
		return driver.Handle{}, fmt.Errorf("task %s: %w", spec.TaskID, err)
	}
	cfg.Env = append(cfg.Env, portEnv...)
	netExtra, netEnv := networkEnv(spec)
	cfg.Env = append(cfg.Env, netEnv...)
	for k, v := range netExtra {
		ports[k] = v
	}

	dir := filepath.Join(d.root, spec.TaskID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return driver.Handle{}, errdefs.Conflict("process driver: task %s already exists (%s)", spec.TaskID, dir)
		}
		return driver.Handle{}, fmt.Errorf("process driver: %w", err)
	}
	var h driver.Handle
	mountEnv, err := d.prepareMounts(spec, dir, cfg)
	if err == nil {
		cfg.Env = append(cfg.Env, mountEnv...)
		h, err = d.start(ctx, dir, cfg, argv)
	}
	if err != nil {
		unmountTaskTmpfs(dir)
		_ = os.RemoveAll(dir)
		return driver.Handle{}, err
	}
	for k, v := range ports {
		if h.Extra == nil {
			h.Extra = map[string]string{}
		}
		h.Extra[k] = v
	}
	return h, nil
}

func (d *Driver) start(ctx context.Context, dir string, cfg shimConfig, argv []string) (driver.Handle, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return driver.Handle{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, fileConfig), b); err != nil {
		return driver.Handle{}, fmt.Errorf("process driver: %w", err)
	}
	shimLog, err := os.OpenFile(filepath.Join(dir, fileShimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return driver.Handle{}, fmt.Errorf("process driver: %w", err)
	}
	defer shimLog.Close()
	cmd := exec.Command(d.shim, append([]string{ShimCommandName, "--dir", dir, "--"}, argv...)...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = shimLog, shimLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the agent, away from its terminal
	if err := cmd.Start(); err != nil {
		return driver.Handle{}, fmt.Errorf("process driver: start shim %s: %w", d.shim, err)
	}
	shimPID := cmd.Process.Pid
	adopt(shimPID)
	_ = cmd.Process.Release() // reaped by PID (see reaped), not by a goroutine per task

	var progPID int
	var rec *exitRecord
	err = poll(ctx, startTimeout, func() bool {
		if progPID = readPID(filepath.Join(dir, filePID)); progPID > 0 {
			return true
		}
		if rec, _ = readExit(dir); rec != nil {
			return true
		}
		// The shim is our own unreaped child, so wait4 says exactly whether
		// it still runs. (Its command line, which shimAlive checks, is not
		// a reliable sign here: the kernel lets the parent go on, closing
		// the exec status pipe and releasing a vfork, before it sets up the
		// new program's arguments, so right after cmd.Start a live shim can
		// show an empty /proc/PID/cmdline. Taking that for an exit turned
		// a quick start under load into "exited before starting the
		// program".)
		if !childRunning(shimPID) {
			progPID = readPID(filepath.Join(dir, filePID))
			rec, _ = readExit(dir)
			return true
		}
		return false
	})
	switch {
	case progPID > 0 || (rec != nil && rec.StartError == ""): // running, or already over
		h := driver.Handle{Driver: Name, ID: cfg.TaskID, PID: shimPID, StartedAt: time.Now(),
			Extra: map[string]string{"dir": dir}}
		if progPID > 0 {
			h.Extra["pid"] = strconv.Itoa(progPID)
		}
		return h, nil
	case rec != nil && rec.StartError != "":
		d.waitGone(shimPID, dir)
		msg := fmt.Sprintf("task %s: cannot run %s: %s", cfg.TaskID, argv[0], rec.StartError)
		if rec.Invalid {
			return driver.Handle{}, errdefs.Invalid("%s", msg)
		}
		return driver.Handle{}, errors.New(msg)
	case err == nil: // the shim died without a word
		return driver.Handle{}, fmt.Errorf("process driver: shim for task %s exited before starting the program: %s",
			cfg.TaskID, tailFile(filepath.Join(dir, fileShimLog)))
	}
	// Timed out or cancelled: take down whatever started.
	_ = syscall.Kill(shimPID, syscall.SIGKILL)
	if pid := readPID(filepath.Join(dir, filePID)); pid > 0 && inSession(pid, shimPID) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	d.waitGone(shimPID, dir)
	return driver.Handle{}, fmt.Errorf("process driver: start task %s: %w", cfg.TaskID, err)
}

// waitGone waits briefly for a shim that is exiting, so that it is reaped
// before its directory is removed.
func (d *Driver) waitGone(shimPID int, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = poll(ctx, 0, func() bool { return !d.shimAlive(shimPID, dir) })
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// resolveProgram returns the program's argv with argv[0] an absolute path;
// errdefs.Invalid if there is no such executable.
func resolveProgram(spec driver.Spec, pathEnv string) ([]string, error) {
	var argv []string
	if len(spec.Command) > 0 {
		argv = append(slices.Clone(spec.Command), spec.Args...)
	} else {
		argv = append([]string{programOfImage(spec.Image)}, spec.Args...)
	}
	prog := argv[0]
	if strings.Contains(prog, "/") {
		p := prog
		if !filepath.IsAbs(p) {
			base := spec.Dir
			if base == "" {
				base = "/"
			}
			p = filepath.Join(base, p)
		}
		if err := checkExecutable(p); err != nil {
			return nil, errdefs.Invalid("task %s: program %s: %v", spec.TaskID, prog, err)
		}
		argv[0] = p
		return argv, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue
		}
		if p := filepath.Join(dir, prog); checkExecutable(p) == nil {
			argv[0] = p
			return argv, nil
		}
	}
	return nil, errdefs.Invalid("task %s: program %q not found in PATH (%s) on this node", spec.TaskID, prog, pathEnv)
}

// programOfImage is the program named by a task's Image. The docker CLI
// and the moby client normalise an image reference without a tag by adding
// ":latest" (`docker service create sleep` sends "sleep:latest"), so a
// bare program name (no '/') ending in ":latest" loses that suffix: the
// program looked up in PATH is "sleep". A program whose name really ends
// in ":latest" can still be given by its path or in the task's Command.
func programOfImage(image string) string {
	if !strings.Contains(image, "/") {
		if name, ok := strings.CutSuffix(image, ":latest"); ok && name != "" {
			return name
		}
	}
	return image
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("no such file")
		}
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}

// resolveUser turns "user[:group]" (names or numeric IDs) into IDs. The
// credential is left unset (nil) when it is the agent's own.
func resolveUser(spec string) (uid, gid *uint32, groups []uint32, home string, err error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	var u, g uint64
	home = "/"
	if usr, lerr := user.Lookup(name); lerr == nil {
		u, _ = strconv.ParseUint(usr.Uid, 10, 32)
		g, _ = strconv.ParseUint(usr.Gid, 10, 32)
		home = usr.HomeDir
		if ids, err := usr.GroupIds(); err == nil {
			for _, id := range ids {
				if n, err := strconv.ParseUint(id, 10, 32); err == nil && n != g {
					groups = append(groups, uint32(n))
				}
			}
		}
	} else if n, perr := strconv.ParseUint(name, 10, 32); perr == nil {
		u, g = n, 0
		if usr, err := user.LookupId(name); err == nil {
			g, _ = strconv.ParseUint(usr.Gid, 10, 32)
			home = usr.HomeDir
		}
	} else {
		return nil, nil, nil, "", fmt.Errorf("no such user")
	}
	if hasGroup {
		if grp, lerr := user.LookupGroup(group); lerr == nil {
			g, _ = strconv.ParseUint(grp.Gid, 10, 32)
		} else if n, perr := strconv.ParseUint(group, 10, 32); perr == nil {
			g = n
		} else {
			return nil, nil, nil, "", fmt.Errorf("no such group %q", group)
		}
		groups = nil
	}
	if int(u) == os.Getuid() && int(g) == os.Getgid() && len(groups) == 0 {
		return nil, nil, nil, home, nil
	}
	uu, gg := uint32(u), uint32(g)
	return &uu, &gg, groups, home, nil
}

// Shims started by this process are its children: once they exit they stay
// zombies until reaped. They are reaped by PID when next looked at; a PID is
// only waited for while it is known to be an unreaped child of ours, so a
// reused PID is never waited for by mistake.
var children struct {
	sync.Mutex
	pids map[int]bool
}

func adopt(pid int) {
	children.Lock()
	defer children.Unlock()
	if children.pids == nil {
		children.pids = make(map[int]bool)
	}
	children.pids[pid] = true
}

// reapChild reaps pid if it is an exited child of ours. known says
// whether pid was a child of ours not reaped before; exited, whether it is
// reaped now.
func reapChild(pid int) (known, exited bool) {
	children.Lock()
	defer children.Unlock()
	if !children.pids[pid] {
		return false, false
	}
	var ws syscall.WaitStatus
	wpid, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	if wpid == pid || errors.Is(err, syscall.ECHILD) {
		delete(children.pids, pid)
		return true, true
	}
	return true, false
}

// childRunning reports whether pid, a child of ours that has not been
// reaped, still runs; it reaps it if it has exited. A PID that is not (or
// no longer) a known child is reported as not running.
func childRunning(pid int) bool {
	known, exited := reapChild(pid)
	return known && !exited
}

// reaped reaps pid if it is an exited child of ours and reports whether it
// was reaped by this call.
func reaped(pid int) bool {
	known, exited := reapChild(pid)
	return known && exited
}

func (d *Driver) shimAlive(pid int, dir string) bool {
	if reaped(pid) {
		return false
	}
	return isShim(pid, dir)
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return n
}

func readExit(dir string) (*exitRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileExit))
	if err != nil {
		return nil, err
	}
	var rec exitRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	s := strings.TrimSpace(string(b))
	if len(s) > 500 {
		s = "..." + s[len(s)-500:]
	}
	if s == "" {
		s = "(no output)"
	}
	return s
}

// poll calls cond with a growing interval (1 ms to 100 ms) until it holds,
// ctx ends, or max (if > 0) has passed.
func poll(ctx context.Context, max time.Duration, cond func() bool) error {
	if max > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max)
		defer cancel()
	}
	interval := time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for {
		if cond() {
			return nil
		}
		t.Reset(interval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if interval < 100*time.Millisecond {
			interval *= 2
		}
	}
}

// lostStatus is reported for a task whose shim died without recording the
// program's exit status (killed, or the machine rebooted).
func lostStatus() driver.ExitStatus {
	return driver.ExitStatus{ExitCode: -1, Err: "process-shim died without recording the task's exit status", FinishedAt: time.Now()}
}

func (rec *exitRecord) status() driver.ExitStatus {
	return driver.ExitStatus{ExitCode: rec.ExitCode, Err: rec.Err, FinishedAt: rec.FinishedAt}
}

func shimPIDOf(h driver.Handle, dir string) int {
	if h.PID > 0 {
		return h.PID
	}
	return readPID(filepath.Join(dir, fileShimPID))
}

// state reports whether the task in dir runs, or how it ended.
func (d *Driver) state(dir string, shimPID int) (running bool, st driver.ExitStatus, err error) {
	if rec, _ := readExit(dir); rec != nil {
		return false, rec.status(), nil
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, st, errdefs.NotFound("process driver: no task directory %s", dir)
	}
	if d.shimAlive(shimPID, dir) {
		return true, st, nil
	}
	if rec, _ := readExit(dir); rec != nil { // written just before the shim exited
		return false, rec.status(), nil
	}
	return false, lostStatus(), nil
}

// Wait implements driver.Driver.
func (d *Driver) Wait(ctx context.Context, h driver.Handle) (driver.ExitStatus, error) {
	dir, err := d.taskDir(h)
	if err != nil {
		return driver.ExitStatus{}, err
	}
	shimPID := shimPIDOf(h, dir)
	var st driver.ExitStatus
	var serr error
	err = poll(ctx, 0, func() bool {
		var running bool
		running, st, serr = d.state(dir, shimPID)
		return !running
	})
	if err != nil {
		return driver.ExitStatus{}, err
	}
	return st, serr
}

// Recover implements driver.Driver.
func (d *Driver) Recover(ctx context.Context, h driver.Handle) (bool, driver.ExitStatus, error) {
	dir, err := d.taskDir(h)
	if err != nil {
		return false, driver.ExitStatus{}, err
	}
	return d.state(dir, shimPIDOf(h, dir))
}

// Stop implements driver.Driver: SIGTERM to the shim, which forwards it to
// the program's process group; SIGKILL to that group when the timeout runs
// out. It returns once the shim has recorded the exit.
func (d *Driver) Stop(ctx context.Context, h driver.Handle, timeout time.Duration) error {
	dir, err := d.taskDir(h)
	if err != nil {
		return err
	}
	shimPID := shimPIDOf(h, dir)
	running, _, err := d.state(dir, shimPID)
	if errdefs.Is(err, errdefs.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !running {
		d.killLeftovers(dir, shimPID)
		return nil
	}
	stopped := func() bool {
		running, _, _ := d.state(dir, shimPID)
		return !running
	}
	if grace := driver.StopTimeout(timeout); grace > 0 {
		_ = syscall.Kill(shimPID, syscall.SIGTERM)
		err := poll(ctx, grace, stopped)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	d.killLeftovers(dir, shimPID)
	if err := poll(ctx, killTimeout, stopped); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The shim itself does not respond: take it down too.
		_ = syscall.Kill(shimPID, syscall.SIGKILL)
		if err := poll(ctx, killTimeout, stopped); err != nil {
			return fmt.Errorf("process driver: task %s did not stop: %w", h.ID, err)
		}
	}
	return nil
}

// killLeftovers SIGKILLs the program's process group if it is still there
// (and still in the shim's session, so a reused PID is left alone).
func (d *Driver) killLeftovers(dir string, shimPID int) {
	pid := readPID(filepath.Join(dir, filePID))
	if pid > 0 && shimPID > 0 && inSession(pid, shimPID) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// Remove implements driver.Driver: kills the task if it still runs, then
// deletes its directory (logs included).
func (d *Driver) Remove(ctx context.Context, h driver.Handle) error {
	dir, err := d.taskDir(h)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	shimPID := shimPIDOf(h, dir)
	if err := d.Stop(ctx, h, -1); err != nil {
		return err
	}
	d.killLeftovers(dir, shimPID)
	reaped(shimPID)
	unmountTaskTmpfs(dir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("process driver: remove task %s: %w", h.ID, err)
	}
	return nil
}

// List implements driver.Lister from the task directories under Root.
func (d *Driver) List(ctx context.Context, nodeID string) ([]driver.Listed, error) {
	ents, err := os.ReadDir(d.root)
	if err != nil {
		return nil, fmt.Errorf("process driver: %w", err)
	}
	var out []driver.Listed
	for _, e := range ents {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		dir := filepath.Join(d.root, e.Name())
		var cfg shimConfig
		if b, err := os.ReadFile(filepath.Join(dir, fileConfig)); err == nil {
			_ = json.Unmarshal(b, &cfg)
		}
		if nodeID != "" && cfg.NodeID != nodeID {
			continue
		}
		h := driver.Handle{Driver: Name, ID: e.Name(), PID: readPID(filepath.Join(dir, fileShimPID)),
			Extra: map[string]string{"dir": dir}}
		if pid := readPID(filepath.Join(dir, filePID)); pid > 0 {
			h.Extra["pid"] = strconv.Itoa(pid)
		}
		if fi, err := os.Stat(filepath.Join(dir, fileShimPID)); err == nil {
			h.StartedAt = fi.ModTime()
		}
		running, _, _ := d.state(dir, h.PID)
		taskID := cfg.TaskID
		if taskID == "" {
			taskID = e.Name()
		}
		out = append(out, driver.Listed{TaskID: taskID, Handle: h, Running: running})
	}
	return out, nil
}
