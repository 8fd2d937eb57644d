// Package docker is the task driver for Docker Engine, through
// github.com/moby/moby/client.
//
// A task is one container named <service>.<slot>.<taskID> (as swarm mode
// names them), labelled with the task, service and node IDs
// (com.docker.swarm.*) and com.flotilla.managed=true so cleanup can find
// every container flotilla made. Images are never pulled (there is no
// registry): Start rejects a task whose image is not on the node.
//
// A task on swarm networks (driver.Spec.Networks) joins one engine bridge
// network per swarm network and node (see Bridge, network.go): the engine
// is not in swarm mode, the task's swarm addresses are virtual, and the
// node's routing mesh captures connections to the swarm subnets on the
// bridges. A bridge is made by the first task that needs it and removed
// when a task on it is removed and no running container is left on it
// (the engine detaches a container that exits: a task that exited does not
// hold its bridge, and could not start again without it).
//
// The engine is reached at Options.Host only; DOCKER_HOST is deliberately
// ignored (flotilla's own clients point it at flotilla). The API version is
// negotiated with the engine on first use (engines down to API 1.40, e.g.
// Docker 20.10 with 1.41) unless Options.APIVersion fixes it.
package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Name is the driver name carried in handles.
const Name = "docker"

// DefaultHost is the engine's standard socket.
const DefaultHost = "unix:///var/run/docker.sock"

// Labels set on every container.
const (
	LabelTaskID      = "com.docker.swarm.task.id"
	LabelTaskName    = "com.docker.swarm.task.name"
	LabelServiceID   = "com.docker.swarm.service.id"
	LabelServiceName = "com.docker.swarm.service.name"
	LabelNodeID      = "com.docker.swarm.node.id"
	LabelManaged     = "com.flotilla.managed"
)

// Options configure a Driver.
type Options struct {
	// Host is the engine's address (unix:///path, tcp://host:port).
	// Default DefaultHost. DOCKER_HOST is not consulted.
	Host string
	// APIVersion fixes the API version; empty negotiates it.
	APIVersion string
	// TLS files for a tcp:// host (all empty = no TLS).
	TLSCACert, TLSCert, TLSKey string
	// Labels are added to every container and engine network (e.g. to
	// tell apart the containers of several flotilla nodes or test runs on
	// one engine).
	Labels map[string]string
	// PrepareNetwork, if set, is called by Start for every bridge of the
	// task (see Bridge), after the bridge exists and before the task's
	// container is created, also when an earlier task made the bridge: the
	// node starts its DNS listener on b.Gateway and its capture rules on
	// b.Iface there, so they are in place before the task's program runs.
	// Tasks starting at once call it at once, for one bridge too: it must
	// be idempotent. The bridge is not removed while it runs. An error
	// fails Start with that error (wrapped; no container is left, and the
	// task's bridges no other container uses are removed).
	PrepareNetwork func(ctx context.Context, b Bridge) error
	// NetworkGone, if set, is called after the driver removed a bridge no
	// running container was on (by Remove, a failed Start or
	// RemoveBridges). A task starting on the same swarm network meanwhile
	// waits for it to return, so a PrepareNetwork for a bridge made again
	// comes after the NetworkGone of the old one; it must not call the
	// driver.
	NetworkGone func(b Bridge)
	// ConcurrentStops bounds the containers stopped at once (default
	// DefaultConcurrentStops), see stopSlot.
	ConcurrentStops int
}

// DefaultConcurrentStops is how many containers the driver stops at once
// by default. On a 2-core machine's engine (20.10, fuse-overlayfs), 100
// containers stopped and removed 16 at a time went in 4.8 s, all at once
// in 6.6 s: when every process is signalled at once they all exit at once,
// and the engine's clean-up of the first ones (unmount, network) waits
// behind the exits of all the others instead of overlapping them.
const DefaultConcurrentStops = 16

// DefaultConcurrentStarts is how many containers the driver creates and
// starts at once: all at once, every create comes before the first start.
const DefaultConcurrentStarts = 16

// stopSlotHold is the longest a stop keeps its slot: a container that
// takes its grace period to exit is not using the engine meanwhile, and
// must not hold up the stops of others.
const stopSlotHold = time.Second

// Driver runs tasks as Docker containers.
type Driver struct {
	c              *client.Client
	host           string
	labels         map[string]string
	prepareNetwork func(context.Context, Bridge) error
	networkGone    func(Bridge)

	netsMu sync.Mutex
	nets   map[string]*netUse // by engine network name

	stops  chan struct{} // a slot per stop under way (stopSlot)
	starts chan struct{} // a slot per create and start under way (run)
}

var (
	_ driver.Driver = (*Driver)(nil)
	_ driver.Lister = (*Driver)(nil)
)

// New returns a driver for the engine at opts.Host. It does not connect:
// call Available to know whether the engine answers.
func New(opts Options) (*Driver, error) {
	host := opts.Host
	if host == "" {
		host = DefaultHost
	}
	copts := []client.Opt{client.WithHost(host), client.WithUserAgent("flotilla-docker-driver")}
	if opts.APIVersion != "" {
		copts = append(copts, client.WithAPIVersion(opts.APIVersion))
	}
	if opts.TLSCACert != "" || opts.TLSCert != "" || opts.TLSKey != "" {
		copts = append(copts, client.WithTLSClientConfig(opts.TLSCACert, opts.TLSCert, opts.TLSKey))
	}
	c, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker driver: %w", err)
	}
	stops := opts.ConcurrentStops
	if stops <= 0 {
		stops = DefaultConcurrentStops
	}
	return &Driver{c: c, host: host, labels: maps.Clone(opts.Labels),
		prepareNetwork: opts.PrepareNetwork, networkGone: opts.NetworkGone, nets: map[string]*netUse{},
		stops: make(chan struct{}, stops), starts: make(chan struct{}, DefaultConcurrentStarts)}, nil
}

// stopSlot waits for one of the driver's stop slots and returns its
// release (idempotent), which also comes by itself after stopSlotHold.
func (d *Driver) stopSlot(ctx context.Context) (release func(), err error) {
	select {
	case d.stops <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var once sync.Once
	free := func() { once.Do(func() { <-d.stops }) }
	t := time.AfterFunc(stopSlotHold, free)
	return func() { t.Stop(); free() }, nil
}

// Close releases the client's idle connections.
func (d *Driver) Close() error { return d.c.Close() }

// Client is the underlying Engine API client.
func (d *Driver) Client() *client.Client { return d.c }

// APIVersion is the API version in use (the negotiated one after the first
// call).
func (d *Driver) APIVersion() string { return d.c.ClientVersion() }

// Available pings the engine (negotiating the API version);
// errdefs.Unavailable if it does not answer.
func (d *Driver) Available(ctx context.Context) error {
	if _, err := d.c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return errdefs.Unavailable("docker engine at %s is not available: %v", d.host, err)
	}
	return nil
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// classify maps the engine client's errors onto errdefs kinds.
func classify(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
	switch {
	case cerrdefs.IsNotFound(err):
		return errdefs.WithKind(errdefs.KindNotFound, wrapped)
	case cerrdefs.IsInvalidArgument(err):
		return errdefs.WithKind(errdefs.KindInvalid, wrapped)
	case cerrdefs.IsConflict(err):
		return errdefs.WithKind(errdefs.KindConflict, wrapped)
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		return errdefs.WithKind(errdefs.KindUnavailable, wrapped)
	}
	return wrapped
}

// Start implements driver.Driver.
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (driver.Handle, error) {
	if err := spec.Validate(); err != nil {
		return driver.Handle{}, err
	}
	if spec.Image == "" {
		return driver.Handle{}, errdefs.Invalid("task %s: the docker driver needs an image", spec.TaskID)
	}
	name := spec.TaskName()
	labels := make(map[string]string, len(spec.Labels)+len(d.labels)+6)
	maps.Copy(labels, spec.Labels)
	maps.Copy(labels, d.labels)
	maps.Copy(labels, map[string]string{
		LabelTaskID:      spec.TaskID,
		LabelTaskName:    name,
		LabelServiceID:   spec.ServiceID,
		LabelServiceName: spec.ServiceName,
		LabelNodeID:      spec.NodeID,
		LabelManaged:     "true",
	})
	stopSecs := graceSeconds(spec.GracePeriod())
	exposed, bindings, err := hostBindings(spec.Ports)
	if err != nil {
		return driver.Handle{}, err
	}
	cfg := &container.Config{
		ExposedPorts: exposed,
		Image:        spec.Image,
		Entrypoint:   spec.Command,
		Cmd:          spec.Args,
		Env:          spec.Env,
		WorkingDir:   spec.Dir,
		Labels:       labels,
		Hostname:     spec.Hostname,
		User:         spec.User,
		StopTimeout:  &stopSecs,
		Healthcheck:  healthConfig(spec.Healthcheck),
	}
	hc := &container.HostConfig{
		Resources:     container.Resources{NanoCPUs: spec.NanoCPUs, Memory: spec.MemoryBytes},
		NetworkMode:   container.NetworkMode(spec.Network),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		PortBindings:  bindings,
		Mounts:        d.engineMounts(spec.Mounts),
	}
	if len(spec.Files) > 0 {
		hc.Mounts = append(hc.Mounts, fileMounts(spec.Files)...)
	}
	if spec.DNS != "" {
		// On a user-defined bridge the container's resolver is the
		// engine's embedded DNS (127.0.0.11), which answers the engine's
		// own names (containers on the bridge) and forwards the others to
		// this server. See TestEmbeddedDNSForwardsFromTheTaskAddress for
		// the address it forwards from.
		dns, err := dnsServer(spec.TaskID, spec.DNS)
		if err != nil {
			return driver.Handle{}, err
		}
		if dns.IsUnspecified() && len(spec.Networks) == 0 {
			return driver.Handle{}, errdefs.Invalid("task %s: DNS server %s stands for the gateway of the task's first network's bridge, and the task is on no network", spec.TaskID, spec.DNS)
		}
		hc.DNS = []netip.Addr{dns}
	}
	if len(spec.Networks) == 0 {
		return d.run(ctx, name, cfg, hc, nil)
	}
	if spec.Network != "" {
		return driver.Handle{}, errdefs.Invalid("task %s: a task on swarm networks cannot use the engine's network mode %q: it joins its networks' bridges", spec.TaskID, spec.Network)
	}
	bridges, release, err := d.acquireBridges(ctx, spec.NodeID, spec.Networks)
	if err != nil {
		return driver.Handle{}, err
	}
	h, err := d.runOn(ctx, name, cfg, hc, bridges)
	release()
	if err != nil {
		// Remove the bridges this task made, unless another task uses them.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = d.removeUnused(rctx, engineNetworks(bridges))
	}
	return h, err
}

// runOn runs a task's container on its bridges: created on the first (its
// network mode, the one Endpoint prefers), connected to the others before
// it starts, once the PrepareNetwork hook has seen every bridge.
func (d *Driver) runOn(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, bridges []Bridge) (driver.Handle, error) {
	if d.prepareNetwork != nil {
		for _, b := range bridges {
			if err := d.prepareNetwork(ctx, b); err != nil {
				return driver.Handle{}, fmt.Errorf("prepare network %s (bridge %s): %w", b.NetworkName, b.Iface, err)
			}
		}
	}
	hc.NetworkMode = container.NetworkMode(bridges[0].EngineNetwork)
	if len(hc.DNS) == 1 && hc.DNS[0].IsUnspecified() {
		hc.DNS = []netip.Addr{bridges[0].Gateway}
	}
	return d.run(ctx, name, cfg, hc, bridges[1:])
}

// run creates the container, connects it to the bridges given and starts
// it; on failure it removes the container.
func (d *Driver) run(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, connect []Bridge) (driver.Handle, error) {
	select {
	case d.starts <- struct{}{}:
	case <-ctx.Done():
		return driver.Handle{}, ctx.Err()
	}
	// The slot is held from the create to the start's answer.
	release := sync.OnceFunc(func() { <-d.starts })
	defer release()
	created, err := d.c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
	if cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "No such image") {
		// The engine checks the image anyway: no call of its own per task.
		return driver.Handle{}, errdefs.Invalid("image %s is not present on this node: there is no registry here; load it with 'docker load' or 'docker import': %v", cfg.Image, err)
	}
	if err != nil {
		return driver.Handle{}, classify(err, "create container %s", name)
	}
	fail := func(err error) (driver.Handle, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = d.c.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return driver.Handle{}, err
	}
	for _, b := range connect {
		if _, err := d.c.NetworkConnect(ctx, b.EngineNetwork, client.NetworkConnectOptions{Container: created.ID}); err != nil {
			return fail(classify(err, "connect container %s to engine network %s", name, b.EngineNetwork))
		}
	}
	_, err = d.c.ContainerStart(ctx, created.ID, client.ContainerStartOptions{})
	release()
	if err != nil {
		err = classify(err, "start container %s", name)
		if errdefs.KindOf(err) == errdefs.KindUnknown && isSpecStartError(err) {
			err = errdefs.WithKind(errdefs.KindInvalid, err)
		}
		return fail(err)
	}
	h := driver.Handle{Driver: Name, ID: created.ID, StartedAt: time.Now(), Extra: map[string]string{"name": name}}
	if ins, err := d.c.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{}); err == nil && ins.Container.State != nil {
		h.PID = ins.Container.State.Pid
		if t, err := time.Parse(time.RFC3339Nano, ins.Container.State.StartedAt); err == nil {
			h.StartedAt = t
		}
		if ins.Container.State.Health == nil && ins.Container.Config != nil && noHealthCheck(ins.Container.Config.Healthcheck) {
			// No check, neither the spec's nor the image's (the engine
			// merged them at create), and none can come later: Health
			// need not ask the engine.
			h.Extra[extraHealth] = healthNone
		}
	}
	return h, nil
}

// isSpecStartError recognises the runtime's words for an entrypoint that
// cannot run (engines answer 400 for most, but not all, of them).
func isSpecStartError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"executable file not found", "no such file or directory", "permission denied", "exec format error", "not a directory"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// graceSeconds rounds a grace period up to whole seconds (the API's unit).
func graceSeconds(g time.Duration) int {
	return int(math.Ceil(g.Seconds()))
}

func statusOf(s *container.State) driver.ExitStatus {
	st := driver.ExitStatus{ExitCode: s.ExitCode, OOMKilled: s.OOMKilled}
	if t, err := time.Parse(time.RFC3339Nano, s.FinishedAt); err == nil && t.Year() > 1 {
		st.FinishedAt = t
	}
	switch {
	case s.Error != "":
		st.Err = s.Error
	case s.OOMKilled:
		st.Err = "OOM killed"
	case s.ExitCode != 0:
		st.Err = "exit status " + strconv.Itoa(s.ExitCode)
	}
	return st
}

func isRunning(s *container.State) bool {
	return s != nil && (s.Running || s.Paused || s.Restarting)
}

// Wait implements driver.Driver. It survives a lost connection to the
// engine (e.g. an engine restart) by waiting again.
func (d *Driver) Wait(ctx context.Context, h driver.Handle) (driver.ExitStatus, error) {
	backoff := 100 * time.Millisecond
	for {
		res := d.c.ContainerWait(ctx, h.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		var werr error
		select {
		case r := <-res.Result:
			ins, err := d.c.ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{})
			switch {
			case err == nil && ins.Container.State != nil && !isRunning(ins.Container.State):
				return statusOf(ins.Container.State), nil
			case err == nil:
				werr = errors.New("container is running again") // wait again
			case cerrdefs.IsNotFound(err):
				// Removed meanwhile: the wait's answer is all there is.
				st := driver.ExitStatus{ExitCode: int(r.StatusCode), FinishedAt: time.Now()}
				if r.Error != nil && r.Error.Message != "" {
					st.Err = r.Error.Message
				} else if r.StatusCode != 0 {
					st.Err = "exit status " + strconv.FormatInt(r.StatusCode, 10)
				}
				return st, nil
			default:
				werr = err
			}
		case werr = <-res.Error:
		}
		if ctx.Err() != nil {
			return driver.ExitStatus{}, ctx.Err()
		}
		if cerrdefs.IsNotFound(werr) {
			return driver.ExitStatus{}, classify(werr, "wait for container %s", h.ID)
		}
		// Connection lost or engine busy: look again after a while.
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return driver.ExitStatus{}, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// inspectManaged inspects a container and checks flotilla made it, so a
// stray handle never makes the driver touch someone else's container.
func (d *Driver) inspectManaged(ctx context.Context, id string) (container.InspectResponse, error) {
	ins, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return ins.Container, classify(err, "inspect container %s", id)
	}
	if ins.Container.Config == nil || ins.Container.Config.Labels[LabelManaged] != "true" {
		return ins.Container, errdefs.Forbidden("container %s was not created by flotilla: leaving it alone", id)
	}
	return ins.Container, nil
}

// Stop implements driver.Driver.
func (d *Driver) Stop(ctx context.Context, h driver.Handle, timeout time.Duration) error {
	ins, err := d.inspectManaged(ctx, h.ID)
	if errdefs.Is(err, errdefs.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !isRunning(ins.State) {
		return nil
	}
	grace := driver.StopTimeout(timeout)
	if grace > 0 {
		secs := graceSeconds(grace)
		release, serr := d.stopSlot(ctx)
		if serr != nil {
			return serr
		}
		_, err = d.c.ContainerStop(ctx, h.ID, client.ContainerStopOptions{Timeout: &secs})
		release()
		if err == nil {
			return nil // the engine answers once the container has stopped
		}
	} else {
		_, err = d.c.ContainerKill(ctx, h.ID, client.ContainerKillOptions{Signal: "KILL"})
	}
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) { // conflict: not running any more
		return classify(err, "stop container %s", h.ID)
	}
	// A kill returns before the container has stopped.
	if _, err := d.Wait(ctx, h); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
		return err
	}
	return nil
}

// Remove implements driver.Driver.
func (d *Driver) Remove(ctx context.Context, h driver.Handle) error {
	ins, err := d.inspectManaged(ctx, h.ID)
	if err != nil {
		if errdefs.Is(err, errdefs.KindNotFound) {
			return nil
		}
		return err
	}
	_, err = d.c.ContainerRemove(ctx, h.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) { // conflict: removal already in progress
		return classify(err, "remove container %s", h.ID)
	}
	// The task's bridges go when no running container is on them.
	if ins.NetworkSettings != nil {
		return d.removeUnused(ctx, taskBridgeNames(ins.NetworkSettings.Networks))
	}
	return nil
}

// Recover implements driver.Driver.
func (d *Driver) Recover(ctx context.Context, h driver.Handle) (bool, driver.ExitStatus, error) {
	ins, err := d.inspectManaged(ctx, h.ID)
	if err != nil {
		return false, driver.ExitStatus{}, err
	}
	if ins.State == nil {
		return false, driver.ExitStatus{}, fmt.Errorf("container %s: engine reported no state", h.ID)
	}
	if isRunning(ins.State) {
		return true, driver.ExitStatus{}, nil
	}
	if ins.State.Status == container.StateCreated {
		return false, driver.ExitStatus{ExitCode: -1, Err: "container was created but never started", FinishedAt: time.Now()}, nil
	}
	return false, statusOf(ins.State), nil
}

// List implements driver.Lister: the containers flotilla made for nodeID
// ("" = any node) and carrying Options.Labels.
func (d *Driver) List(ctx context.Context, nodeID string) ([]driver.Listed, error) {
	f := client.Filters{}.Add("label", LabelManaged+"=true")
	if nodeID != "" {
		f.Add("label", LabelNodeID+"="+nodeID)
	}
	for k, v := range d.labels {
		f.Add("label", k+"="+v)
	}
	res, err := d.c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, classify(err, "list containers")
	}
	out := make([]driver.Listed, 0, len(res.Items))
	for _, c := range res.Items {
		h := driver.Handle{Driver: Name, ID: c.ID, StartedAt: time.Unix(c.Created, 0)}
		if len(c.Names) > 0 {
			h.Extra = map[string]string{"name": trimSlash(c.Names[0])}
		}
		out = append(out, driver.Listed{TaskID: c.Labels[LabelTaskID], Handle: h, Running: c.State == container.StateRunning})
	}
	return out, nil
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

// Logs implements driver.Driver: the engine's logs (json-file, local or
// journald log drivers), demultiplexed, with the engine's timestamps.
func (d *Driver) Logs(ctx context.Context, h driver.Handle, opts driver.LogOptions, out chan<- driver.LogMessage) error {
	o := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: opts.Follow, Tail: "all"}
	if opts.Tail >= 0 {
		o.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		o.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	rc, err := d.c.ContainerLogs(ctx, h.ID, o)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classify(err, "logs of container %s", h.ID)
	}
	defer rc.Close()
	stdout := &lineWriter{ctx: ctx, out: out, stream: driver.Stdout, since: opts.Since}
	stderr := &lineWriter{ctx: ctx, out: out, stream: driver.Stderr, since: opts.Since}
	_, err = stdcopy.StdCopy(stdout, stderr, rc)
	if err == nil {
		err = stdout.flush()
	}
	if err == nil {
		err = stderr.flush()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		return classify(err, "logs of container %s", h.ID)
	}
	return nil
}

// lineWriter turns one demultiplexed stream of "TIMESTAMP line\n" into
// LogMessages.
type lineWriter struct {
	ctx    context.Context
	out    chan<- driver.LogMessage
	stream int
	since  time.Time
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if err := w.emit(w.buf[:i]); err != nil {
			return 0, err
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) == 0 {
		w.buf = nil // let the backing array go
	}
	return len(p), nil
}

func (w *lineWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	err := w.emit(w.buf)
	w.buf = nil
	return err
}

func (w *lineWriter) emit(line []byte) error {
	m := driver.LogMessage{Stream: w.stream}
	if sp := bytes.IndexByte(line, ' '); sp > 0 {
		if t, err := time.Parse(time.RFC3339Nano, string(line[:sp])); err == nil {
			m.Time, line = t, line[sp+1:]
		}
	} else if t, err := time.Parse(time.RFC3339Nano, string(line)); err == nil {
		m.Time, line = t, nil // an empty line
	}
	if !w.since.IsZero() && !m.Time.IsZero() && m.Time.Before(w.since) {
		return nil
	}
	m.Line = bytes.Clone(line)
	if m.Line == nil {
		m.Line = []byte{}
	}
	select {
	case w.out <- m:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}
