package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/atomicfile"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/scheduler"
	"github.com/flotilla-org/flotilla/manager/state"
)

// Container labels flotilla reads: the task's driver, and (docker) its
// network mode, e.g. "host" — swarm's overlay networks do not exist here.
const (
	LabelDriver  = scheduler.DriverLabel
	LabelNetwork = "com.flotilla.network"
)

// Executor runs the node's tasks through its drivers, keeps a local record
// of them (so a restarted agent re-attaches instead of starting twice) and
// reports every state change.
type Executor struct {
	NodeID   string
	Hostname string
	Drivers  map[string]driver.Driver
	Default  string // driver for tasks that name none
	DBPath   string // local task record; "" keeps it in memory only
	// FormerNodeIDs are identities this node's data dir had before (it
	// left and joined again): their tasks are never this node's to keep.
	FormerNodeIDs []string
	// PublishHost is where tasks bind ports published in host mode (""
	// for all of the node's addresses).
	PublishHost string
	Log         *slog.Logger
	// Networks attaches tasks to their swarm networks; nil starts them
	// on none.
	Networks NetworkAttacher
	// HealthPoll is how often a checked task's health is read from its
	// driver (0: from the check's interval, see healthPoll).
	HealthPoll time.Duration
	// Leaving, when set, is called as a running task stops or is told to
	// (with the executor's lock held: it must not block): the routing
	// mesh's kernel path stops sending it connections before the
	// managers' table says so.
	Leaving func()
	// Metrics times driver calls (nil: not timed).
	Metrics *Metrics

	filesMu  sync.Mutex
	filesDir string // memory-backed directory of task files (taskfiles.go)

	mu      sync.Mutex
	tasks   map[string]*record
	reports map[string]swarm.TaskStatus
	wake    chan struct{}
	ctx     context.Context
	wg      sync.WaitGroup
}

// record is what the node remembers of one task.
type record struct {
	Task        swarm.Task
	ServiceName string
	Driver      string
	Handle      *driver.Handle `json:",omitempty"`
	Status      swarm.TaskStatus
	Ports       []swarm.PortConfig `json:",omitempty"`
	// Unhealthy: failed by its health check and stopped by the agent.
	Unhealthy bool `json:",omitempty"`
	stopping  bool
	endpoints map[string]string // where the task listens, by port ("80/tcp")
	cancel    context.CancelFunc
}

// Start loads the local record and re-attaches to tasks that still run.
func (e *Executor) Start(ctx context.Context) error {
	e.ctx = ctx
	e.tasks = map[string]*record{}
	e.reports = map[string]swarm.TaskStatus{}
	e.wake = make(chan struct{}, 1)
	if e.DBPath != "" {
		b, err := os.ReadFile(e.DBPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(b, &e.tasks); err != nil {
				e.Log.Warn("local task record is damaged; starting with none", "path", e.DBPath, "err", err)
				e.tasks = map[string]*record{}
			}
			if e.tasks == nil {
				e.tasks = map[string]*record{}
			}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.removeUnrecorded(ctx)
	e.removeUnknownTaskFiles()
	for id, r := range e.tasks {
		switch {
		case r == nil:
			delete(e.tasks, id)
			continue
		case r.Handle == nil && !terminal(r.Status.State):
			// The agent stopped while starting it: forget the attempt so
			// the next assignment sync starts it afresh.
			delete(e.tasks, id)
			continue
		case r.Unhealthy && r.Handle != nil && terminal(r.Status.State) && e.Drivers[r.Driver] != nil:
			// Failed as unhealthy while the agent was stopping it: finish.
			if running, _, err := e.Drivers[r.Driver].Recover(ctx, *r.Handle); err == nil && running {
				e.stopInBackground(r, e.Drivers[r.Driver])
			}
			continue
		case r.Handle == nil || terminal(r.Status.State):
			continue
		}
		d := e.Drivers[r.Driver]
		if d == nil {
			e.setStatus(r, swarm.TaskStateFailed, "", fmt.Sprintf("driver %s is not available on this node after restart", r.Driver), nil)
			continue
		}
		running, st, err := d.Recover(ctx, *r.Handle)
		switch {
		case err != nil:
			e.setStatus(r, swarm.TaskStateFailed, "", "task lost while the node was down: "+err.Error(), nil)
		case running:
			e.Log.Info("re-attached to running task", "task", r.Task.ID)
			e.reattach(r, d)
			e.watch(r, d)
			e.watchHealth(r, d) // a task still starting waits for its health check
		default:
			e.exited(r, st)
		}
	}
	e.saveLocked()
	return nil
}

// removeUnrecorded removes tasks a driver still has for this node but the
// local record does not know (the record was lost, or the agent died
// between starting a task and saving it): nobody would ever stop them, and
// the task's replacement would clash with them.
func (e *Executor) removeUnrecorded(ctx context.Context) {
	e.removeListed(ctx, func(t driver.Listed) bool {
		r := e.tasks[t.TaskID]
		return r == nil || r.Handle == nil
	})
}

// Reports returns and clears the pending status reports.
func (e *Executor) Reports() []nodeapi.TaskStatusUpdate {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]nodeapi.TaskStatusUpdate, 0, len(e.reports))
	for id, st := range e.reports {
		out = append(out, nodeapi.TaskStatusUpdate{TaskID: id, Status: st})
	}
	e.reports = map[string]swarm.TaskStatus{}
	return out
}

// Requeue puts reports back after a failed send; newer ones win.
func (e *Executor) Requeue(us []nodeapi.TaskStatusUpdate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, u := range us {
		if _, newer := e.reports[u.TaskID]; !newer {
			e.reports[u.TaskID] = u.Status
		}
	}
}

// ResendAll queues the current status of every task, for a new leader
// that may have missed reports its predecessor took.
func (e *Executor) ResendAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, r := range e.tasks {
		if r.Status.State != "" {
			e.reports[id] = r.Status
		}
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Wake is signalled when there are reports to send.
func (e *Executor) Wake() <-chan struct{} { return e.wake }

// Sync makes the node's tasks match the managers' assignment set.
func (e *Executor) Sync(assigned []nodeapi.Assignment) {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[string]bool{}
	for _, a := range assigned {
		t := a.Task
		seen[t.ID] = true
		r := e.tasks[t.ID]
		wantRun := t.DesiredState == swarm.TaskStateRunning
		switch {
		case r == nil && wantRun && !terminal(t.Status.State):
			r = &record{Task: t, ServiceName: a.ServiceName, Status: t.Status, Ports: a.Ports}
			e.tasks[t.ID] = r
			e.launch(r, a.Files)
		case r == nil:
			if !terminal(t.Status.State) {
				// Never started here and no longer wanted.
				r = &record{Task: t, ServiceName: a.ServiceName, Status: t.Status}
				e.tasks[t.ID] = r
				e.setStatus(r, swarm.TaskStateShutdown, "", "", nil)
			}
		default:
			r.Task = t
			if !wantRun && !terminal(r.Status.State) && !r.stopping {
				e.stop(r)
			}
			if rank(t.Status.State) < rank(r.Status.State) {
				// The managers missed a report (a leader failed after
				// taking it): send the current status again.
				e.reports[t.ID] = r.Status
				select {
				case e.wake <- struct{}{}:
				default:
				}
			}
		}
	}
	for id, r := range e.tasks {
		if !seen[id] {
			e.forget(r)
			delete(e.tasks, id)
		}
	}
	e.saveLocked()
}

func (e *Executor) driverFor(t swarm.Task) (string, driver.Driver) {
	name := e.Default
	if cs := t.Spec.ContainerSpec; cs != nil && cs.Labels[LabelDriver] != "" {
		name = cs.Labels[LabelDriver]
	}
	return name, e.Drivers[name]
}

func specOf(nodeID, hostname, serviceName string, t swarm.Task) driver.Spec {
	s := driver.Spec{TaskID: t.ID, ServiceID: t.ServiceID, ServiceName: serviceName, NodeID: nodeID, Slot: t.Slot}
	tc := newTemplateContext(nodeID, hostname, serviceName, t)
	if cs := t.Spec.ContainerSpec; cs != nil {
		s.Image, s.Command, s.Args = cs.Image, cs.Command, cs.Args
		s.Env = tc.taskEnv()
		for _, e := range cs.Env {
			s.Env = append(s.Env, tc.expand(e))
		}
		s.Dir, s.Labels, s.Hostname, s.User = cs.Dir, cs.Labels, tc.expand(cs.Hostname), cs.User
		s.Network = cs.Labels[LabelNetwork]
		s.Healthcheck = healthCheckOf(cs.Healthcheck)
		s.Mounts = mountsOf(tc, cs.Mounts)
		if cs.StopGracePeriod != nil {
			s.StopGracePeriod = *cs.StopGracePeriod
		}
	}
	if res := t.Spec.Resources; res != nil && res.Limits != nil {
		s.NanoCPUs, s.MemoryBytes = res.Limits.NanoCPUs, res.Limits.MemoryBytes
	}
	return s
}

// launch starts a task in the background: accepted → preparing →
// starting → running (for a task with a health check: once healthy), then
// waits for it to end.
//
// files are the data of the task's secrets and configs: written to
// memory-backed files here, never kept in the record.
func (e *Executor) launch(r *record, files []nodeapi.TaskFile) {
	name, d := e.driverFor(r.Task)
	r.Driver = name
	if d == nil {
		e.setStatus(r, swarm.TaskStateRejected, "", fmt.Sprintf("driver %q is not available on this node", name), nil)
		return
	}
	e.setStatus(r, swarm.TaskStateAccepted, "accepted", "", nil)
	ctx, cancel := context.WithCancel(e.ctx)
	r.cancel = cancel
	spec := specOf(e.NodeID, e.Hostname, r.ServiceName, r.Task)
	spec.Ports = targetPorts(r.Ports, e.PublishHost)
	spec.Networks = e.networksOf(r.Task)
	task := r.Task // Sync replaces r.Task under e.mu while this starts
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.mu.Lock()
		e.setStatus(r, swarm.TaskStateStarting, "starting", "", nil)
		e.mu.Unlock()
		err := e.attach(d, &spec)
		if err == nil {
			var env []string
			spec.Files, env, err = e.writeTaskFiles(task, name, files)
			spec.Env = append(spec.Env, env...)
		}
		var h driver.Handle
		if err == nil {
			began := time.Now()
			h, err = d.Start(ctx, spec)
			e.Metrics.observeCall(name, "start", began, err)
		}
		if err == nil {
			e.started(ctx, d, h, spec)
		}
		checked := err == nil && e.checksHealth(ctx, d, h)
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.tasks[r.Task.ID] != r {
			// Dropped from the set while starting: nothing may be left.
			if err == nil {
				go func() { _ = d.Remove(context.WithoutCancel(e.ctx), h) }()
			}
			return
		}
		if err != nil && e.ctx.Err() != nil {
			return // the agent is stopping: the restarted agent starts it again
		}
		if err != nil {
			st := swarm.TaskStateFailed
			switch {
			case r.stopping:
				// Shut down while starting: the cancelled start is the
				// shutdown, not a failure.
				e.setStatus(r, swarm.TaskStateShutdown, "shutdown", "", nil)
				e.saveLocked()
				return
			case errdefs.Is(err, errdefs.KindInvalid):
				st = swarm.TaskStateRejected
			}
			e.setStatus(r, st, "starting", err.Error(), nil)
			e.saveLocked()
			return
		}
		r.Handle = &h
		cst := &swarm.ContainerStatus{ContainerID: h.ID, PID: h.PID}
		if r.stopping {
			// Shut down while it was starting: stop it, and let watch
			// report the exit as shutdown.
			e.saveLocked()
			e.stop(r)
			e.watch(r, d)
			return
		}
		if checked {
			// Swarm's way: starting until the first healthy result.
			e.saveLocked()
			e.watch(r, d)
			e.watchHealth(r, d)
			return
		}
		e.setStatus(r, swarm.TaskStateRunning, "started", "", cst)
		e.saveLocked()
		e.watch(r, d)
	}()
}

// watch waits for a running task to end and reports how.
func (e *Executor) watch(r *record, d driver.Driver) {
	h := *r.Handle
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		st, err := d.Wait(e.ctx, h)
		if e.ctx.Err() != nil {
			return // the agent is stopping; the task keeps running
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			st = driver.ExitStatus{ExitCode: -1, Err: err.Error()}
		}
		e.exited(r, st)
		e.saveLocked()
	}()
}

func (e *Executor) exited(r *record, st driver.ExitStatus) {
	cst := &swarm.ContainerStatus{ExitCode: st.ExitCode}
	if r.Handle != nil {
		cst.ContainerID = r.Handle.ID
	}
	switch {
	case r.stopping || r.Task.DesiredState != swarm.TaskStateRunning:
		e.setStatus(r, swarm.TaskStateShutdown, "shutdown", "", cst)
	case st.Failed():
		e.setStatus(r, swarm.TaskStateFailed, "finished", exitError(st), cst)
	default:
		e.setStatus(r, swarm.TaskStateComplete, "finished", "", cst)
	}
}

// exitError is a failed task's error as dockerd words it: "task:
// non-zero exit (N)", followed by the cause only when it says more than
// the exit code does (a signal, an OOM kill, the engine's own error).
func exitError(st driver.ExitStatus) string {
	msg := fmt.Sprintf("task: non-zero exit (%d)", st.ExitCode)
	if cause := st.String(); cause != fmt.Sprintf("exit status %d", st.ExitCode) {
		msg += ": " + cause
	}
	return msg
}

// stop shuts a task down because the managers no longer want it.
func (e *Executor) stop(r *record) {
	r.stopping = true
	if r.Status.State == swarm.TaskStateRunning && e.Leaving != nil {
		e.Leaving()
	}
	if r.Handle == nil {
		if r.cancel != nil {
			r.cancel() // still starting: launch sees stopping and finishes
		}
		if r.Status.State == swarm.TaskStateAccepted || r.Status.State == swarm.TaskStateAssigned || r.Status.State == "" {
			e.setStatus(r, swarm.TaskStateShutdown, "shutdown", "", nil)
		}
		return
	}
	// watch reports the exit as shutdown since stopping is set.
	e.stopInBackground(r, e.Drivers[r.Driver])
}

// stopInBackground stops a started task with its grace period; watch
// sees the exit. A task the managers want removed (its service is gone)
// is removed once stopped, as swarm's agent does, rather than after the
// managers have heard of the stop and dropped the task (forget then finds
// nothing left). Caller holds e.mu.
func (e *Executor) stopInBackground(r *record, d driver.Driver) {
	h := *r.Handle
	grace := specOf(e.NodeID, e.Hostname, r.ServiceName, r.Task).StopGracePeriod
	taskID, driverName := r.Task.ID, r.Driver
	remove := r.Task.DesiredState == swarm.TaskStateRemove
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		began := time.Now()
		err := d.Stop(e.ctx, h, grace)
		e.Metrics.observeCall(driverName, "stop", began, err)
		if err != nil && e.ctx.Err() == nil {
			e.Log.Warn("stop task", "task", taskID, "err", err)
		}
		if err != nil || !remove {
			return
		}
		began = time.Now()
		err = d.Remove(e.ctx, h)
		e.Metrics.observeCall(driverName, "remove", began, err)
		if err != nil && e.ctx.Err() == nil {
			e.Log.Warn("remove task", "task", taskID, "err", err)
		}
	}()
}

// forget removes what a task left on the node once the managers dropped it.
func (e *Executor) forget(r *record) {
	if r.cancel != nil {
		r.cancel()
	}
	if e.Networks != nil {
		e.Networks.DetachTask(r.Task.ID)
	}
	if r.Handle == nil {
		e.removeTaskFiles(r.Task.ID)
		return
	}
	d, driverName := e.Drivers[r.Driver], r.Driver
	h := *r.Handle
	if d == nil {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		began := time.Now()
		err := d.Remove(e.ctx, h)
		e.Metrics.observeCall(driverName, "remove", began, err)
		if err != nil && e.ctx.Err() == nil {
			e.Log.Warn("remove task", "task", r.Task.ID, "err", err)
		}
		e.removeTaskFiles(r.Task.ID) // after the container that mounts them
	}()
}

// setStatus records a forward move and queues its report.
func (e *Executor) setStatus(r *record, st swarm.TaskState, msg, errMsg string, cst *swarm.ContainerStatus) {
	if terminal(r.Status.State) || rank(st) <= rank(r.Status.State) && r.Status.State != "" {
		return
	}
	if msg == "" {
		msg = string(st)
	}
	if r.Status.State == swarm.TaskStateRunning && e.Leaving != nil {
		e.Leaving()
	}
	r.Status = swarm.TaskStatus{Timestamp: time.Now().UTC(), State: st, Message: msg, Err: errMsg, ContainerStatus: cst}
	if cst == nil && r.Handle != nil {
		r.Status.ContainerStatus = &swarm.ContainerStatus{ContainerID: r.Handle.ID, PID: r.Handle.PID}
	}
	if r.Handle != nil {
		r.Status.PortStatus = hostPortStatus(r.Ports)
	}
	e.reports[r.Task.ID] = r.Status
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Executor) saveLocked() {
	if e.DBPath == "" {
		return
	}
	b, err := json.Marshal(e.tasks)
	if err != nil {
		e.Log.Warn("encode local task record", "err", err)
		return
	}
	if err := writeFileAtomic(e.DBPath, b); err != nil {
		e.Log.Warn("save local task record", "err", err)
	}
}

// Handle returns the driver and handle of a task this node runs or ran.
func (e *Executor) Handle(taskID string) (driver.Driver, driver.Handle, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.tasks[taskID]
	if r == nil || r.Handle == nil || e.Drivers[r.Driver] == nil {
		return nil, driver.Handle{}, false
	}
	return e.Drivers[r.Driver], *r.Handle, true
}

// Wait waits for the executor's goroutines after its context ended.
func (e *Executor) Wait() {
	e.wg.Wait()
	e.dropEmptyFilesBase()
}

// The one task-state order (manager/state): reports only move forward.
func rank(s swarm.TaskState) int { return state.TaskStateRank[s] }

func terminal(s swarm.TaskState) bool { return state.TerminalState(s) }

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, data, 0o600)
}
