// Package fake is an in-memory, scriptable task driver for tests and for
// benchmarks with thousands of simulated nodes.
//
// A task's behaviour is chosen from its spec: K=V entries in Env, or in Args
// (Args win), with these keys:
//
//	FAKE_EXIT_AFTER=2s    the task exits by itself after this long (code 0 unless FAKE_EXIT_CODE)
//	FAKE_EXIT_CODE=3      exit status; alone, the task exits at once with it
//	FAKE_OOM=1            the exit is reported as an OOM kill (code 137)
//	FAKE_FAIL_START=1     Start fails (any other value than 1/true is the error message)
//	FAKE_INVALID=1        Start fails with errdefs.Invalid (the task is rejected)
//	FAKE_HANG_START=1     Start blocks until its ctx ends
//	FAKE_START_DELAY=50ms Start takes this long
//	FAKE_LOG=hello        a stdout line at start ("\n" separates several lines)
//	FAKE_STDERR=oops      a stderr line at start
//	FAKE_LOG_EVERY=1s     FAKE_LOG's last line is repeated, numbered, this often while the task runs
//	FAKE_STOP_DELAY=1s    after SIGTERM the task takes this long to exit (killed if the grace period is shorter)
//	FAKE_IGNORE_TERM=1    the task ignores SIGTERM: Stop kills it when its timeout runs out
//
// Without any of them (e.g. Image "fake") a task runs until stopped. A task
// with a health check command reports health "starting" until SetHealth. A task
// ended by SIGTERM reports exit code 143 ("signal: terminated"), one killed
// 137 ("signal: killed").
//
// A running fake task costs a small struct in a map: no goroutine, no timer
// (timed exits are evaluated lazily). Only Wait, Stop and Logs callers block.
// State lives in the *Driver, so agent-restart tests share one *Driver
// between the old and the new agent and Recover finds the tasks.
package fake

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Name is the driver name carried in handles.
const Name = "fake"

// Driver is the fake driver. The zero value is ready to use; set the hooks
// before the first call.
type Driver struct {
	// OnStart, if set, is called by Start before anything else; an error is
	// returned by Start as it is (classify it with errdefs to choose between
	// rejected and failed).
	OnStart func(driver.Spec) error
	// OnStop and OnRemove, if set, are called by Stop and Remove with the handle.
	OnStop   func(driver.Handle)
	OnRemove func(driver.Handle)
	// KnownImages, if non-nil, lists the images "present on the node": Start
	// rejects other images with errdefs.Invalid, as the docker driver does.
	KnownImages map[string]bool

	mu     sync.Mutex
	tasks  map[string]*task
	starts int
}

var (
	_ driver.Driver = (*Driver)(nil)
	_ driver.Lister = (*Driver)(nil)
)

// New returns an empty fake driver.
func New() *Driver { return &Driver{} }

// (The booleans sit together: a task, which holds one, stays small; see
// TestTenThousandTasksAreCheap.)
type behaviour struct {
	exitAfter  time.Duration // <0: runs until stopped
	exitCode   int
	oom        bool
	hangStart  bool
	failStart  string
	invalid    string
	startDelay time.Duration
	logLines   []string
	stderr     string
	logEvery   time.Duration
	stopDelay  time.Duration // <0: ignores SIGTERM
}

func parseBehaviour(spec driver.Spec) (behaviour, error) {
	b := behaviour{exitAfter: -1}
	kv := map[string]string{}
	for _, list := range [][]string{spec.Env, spec.Args} {
		for _, e := range list {
			if k, v, ok := strings.Cut(e, "="); ok && strings.HasPrefix(k, "FAKE_") {
				kv[k] = v
			}
		}
	}
	dur := func(k string) (time.Duration, error) {
		d, err := time.ParseDuration(kv[k])
		if err != nil {
			return 0, errdefs.Invalid("fake driver: %s=%q: %v", k, kv[k], err)
		}
		return d, nil
	}
	truthy := func(v string) bool { return v == "1" || strings.EqualFold(v, "true") }
	var err error
	if _, ok := kv["FAKE_EXIT_CODE"]; ok {
		if b.exitCode, err = strconv.Atoi(kv["FAKE_EXIT_CODE"]); err != nil {
			return b, errdefs.Invalid("fake driver: FAKE_EXIT_CODE=%q is not a number", kv["FAKE_EXIT_CODE"])
		}
		b.exitAfter = 0
	}
	if _, ok := kv["FAKE_EXIT_AFTER"]; ok {
		if b.exitAfter, err = dur("FAKE_EXIT_AFTER"); err != nil {
			return b, err
		}
	}
	if truthy(kv["FAKE_OOM"]) {
		b.oom = true
		if b.exitAfter < 0 {
			b.exitAfter = 0
		}
	}
	if v, ok := kv["FAKE_FAIL_START"]; ok && v != "" && v != "0" {
		b.failStart = "fake: start failed (FAKE_FAIL_START)"
		if !truthy(v) {
			b.failStart = v
		}
	}
	if v, ok := kv["FAKE_INVALID"]; ok && v != "" && v != "0" {
		b.invalid = "fake: task spec rejected (FAKE_INVALID)"
		if !truthy(v) {
			b.invalid = v
		}
	}
	b.hangStart = truthy(kv["FAKE_HANG_START"])
	if _, ok := kv["FAKE_START_DELAY"]; ok {
		if b.startDelay, err = dur("FAKE_START_DELAY"); err != nil {
			return b, err
		}
	}
	if v, ok := kv["FAKE_LOG"]; ok {
		b.logLines = strings.Split(strings.ReplaceAll(v, `\n`, "\n"), "\n")
	}
	b.stderr = kv["FAKE_STDERR"]
	if _, ok := kv["FAKE_LOG_EVERY"]; ok {
		if b.logEvery, err = dur("FAKE_LOG_EVERY"); err != nil {
			return b, err
		}
		if b.logEvery <= 0 {
			return b, errdefs.Invalid("fake driver: FAKE_LOG_EVERY must be positive")
		}
		if len(b.logLines) == 0 {
			b.logLines = []string{"tick"}
		}
	}
	if _, ok := kv["FAKE_STOP_DELAY"]; ok {
		if b.stopDelay, err = dur("FAKE_STOP_DELAY"); err != nil {
			return b, err
		}
	}
	if truthy(kv["FAKE_IGNORE_TERM"]) {
		b.stopDelay = -1
	}
	return b, nil
}

type task struct {
	spec      driver.Spec
	b         behaviour
	startedAt time.Time
	exitAt    time.Time     // zero: until stopped
	done      chan struct{} // closed when ended explicitly (stop, kill, Exit, Remove)
	ended     bool
	gone      bool // vanished: Wait and Recover say NotFound
	status    driver.ExitStatus
	health    driver.Health
}

// endedAt reports whether t has ended by now, and how. Lazy timed exits are
// frozen into t.status the first time they are seen. Caller holds d.mu.
func (t *task) check(now time.Time) bool {
	if t.ended {
		return true
	}
	if !t.exitAt.IsZero() && !now.Before(t.exitAt) {
		t.ended = true
		t.status = driver.ExitStatus{ExitCode: t.b.exitCode, FinishedAt: t.exitAt}
		if t.b.oom {
			t.status.ExitCode, t.status.OOMKilled, t.status.Err = 137, true, "OOM killed"
		} else if t.b.exitCode != 0 {
			t.status.Err = fmt.Sprintf("exit status %d", t.b.exitCode)
		}
		close(t.done)
		return true
	}
	return false
}

// end ends a running task now with st. Caller holds d.mu.
func (t *task) end(st driver.ExitStatus) {
	if t.check(time.Now()) {
		return
	}
	t.ended, t.status = true, st
	close(t.done)
}

var (
	statusTerminated = driver.ExitStatus{ExitCode: 143, Err: "signal: terminated"}
	statusKilled     = driver.ExitStatus{ExitCode: 137, Err: "signal: killed"}
)

func withTime(st driver.ExitStatus) driver.ExitStatus {
	st.FinishedAt = time.Now()
	return st
}

// Name implements driver.Driver.
func (d *Driver) Name() string { return Name }

// Start implements driver.Driver.
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (driver.Handle, error) {
	if d.OnStart != nil {
		if err := d.OnStart(spec); err != nil {
			return driver.Handle{}, err
		}
	}
	if err := spec.Validate(); err != nil {
		return driver.Handle{}, err
	}
	if d.KnownImages != nil && !d.KnownImages[spec.Image] {
		return driver.Handle{}, errdefs.Invalid("image %s is not present on this node: there is no registry here; load it with 'docker load' or 'docker import'", spec.Image)
	}
	b, err := parseBehaviour(spec)
	if err != nil {
		return driver.Handle{}, err
	}
	if b.invalid != "" {
		return driver.Handle{}, errdefs.Invalid("%s", b.invalid)
	}
	if b.failStart != "" {
		return driver.Handle{}, errors.New(b.failStart)
	}
	if b.hangStart {
		<-ctx.Done()
		return driver.Handle{}, fmt.Errorf("fake: start of task %s hung: %w", spec.TaskID, ctx.Err())
	}
	if b.startDelay > 0 {
		if err := sleep(ctx, b.startDelay); err != nil {
			return driver.Handle{}, fmt.Errorf("fake: start of task %s: %w", spec.TaskID, err)
		}
	}
	now := time.Now()
	t := &task{spec: spec, b: b, startedAt: now, done: make(chan struct{})}
	if spec.Healthcheck.Runnable() {
		t.health.Status = driver.HealthStarting
	}
	if b.exitAfter >= 0 {
		t.exitAt = now.Add(b.exitAfter)
		if b.exitAfter == 0 {
			t.exitAt = now.Add(time.Nanosecond) // "running" when Start returns, ended right after
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tasks == nil {
		d.tasks = make(map[string]*task)
	}
	if _, ok := d.tasks[spec.TaskID]; ok {
		return driver.Handle{}, errdefs.Conflict("fake: task %s already exists", spec.TaskID)
	}
	d.tasks[spec.TaskID] = t
	d.starts++
	return driver.Handle{Driver: Name, ID: spec.TaskID, StartedAt: now}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Driver) lookup(h driver.Handle) (*task, error) {
	t := d.tasks[h.ID]
	if t == nil || t.gone {
		return nil, errdefs.NotFound("fake: no task %s", h.ID)
	}
	return t, nil
}

// Wait implements driver.Driver.
func (d *Driver) Wait(ctx context.Context, h driver.Handle) (driver.ExitStatus, error) {
	d.mu.Lock()
	t, err := d.lookup(h)
	if err != nil {
		d.mu.Unlock()
		return driver.ExitStatus{}, err
	}
	if t.check(time.Now()) {
		st := t.status
		d.mu.Unlock()
		return st, nil
	}
	done, exitAt := t.done, t.exitAt
	d.mu.Unlock()

	var timer <-chan time.Time
	if !exitAt.IsZero() {
		tm := time.NewTimer(time.Until(exitAt))
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case <-done:
	case <-timer:
	case <-ctx.Done():
		return driver.ExitStatus{}, ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t.gone {
		return driver.ExitStatus{}, errdefs.NotFound("fake: task %s vanished", h.ID)
	}
	t.check(time.Now())
	return t.status, nil
}

// Stop implements driver.Driver.
func (d *Driver) Stop(ctx context.Context, h driver.Handle, timeout time.Duration) error {
	if d.OnStop != nil {
		d.OnStop(h)
	}
	grace := driver.StopTimeout(timeout)
	d.mu.Lock()
	t, err := d.lookup(h)
	if err != nil || t.check(time.Now()) {
		d.mu.Unlock()
		return nil
	}
	delay := t.b.stopDelay
	if delay == 0 {
		t.end(withTime(statusTerminated))
		d.mu.Unlock()
		return nil
	}
	done := t.done
	d.mu.Unlock()

	st := statusKilled
	wait := grace
	if delay > 0 && delay < grace {
		st, wait = statusTerminated, delay
	}
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-done: // ended meanwhile (natural exit, another Stop, Remove)
		return nil
	case <-tm.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	t.end(withTime(st))
	d.mu.Unlock()
	return nil
}

// Remove implements driver.Driver.
func (d *Driver) Remove(ctx context.Context, h driver.Handle) error {
	if d.OnRemove != nil {
		d.OnRemove(h)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.tasks[h.ID]; t != nil {
		t.end(withTime(statusKilled))
		delete(d.tasks, h.ID)
	}
	return nil
}

// Recover implements driver.Driver.
func (d *Driver) Recover(ctx context.Context, h driver.Handle) (bool, driver.ExitStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.lookup(h)
	if err != nil {
		return false, driver.ExitStatus{}, err
	}
	if t.check(time.Now()) {
		return false, t.status, nil
	}
	return true, driver.ExitStatus{}, nil
}

// Logs implements driver.Driver. FAKE_LOG lines carry the start time; the
// FAKE_LOG_EVERY repeats are numbered from 1 and carry start + n*every.
func (d *Driver) Logs(ctx context.Context, h driver.Handle, opts driver.LogOptions, out chan<- driver.LogMessage) error {
	d.mu.Lock()
	t, err := d.lookup(h)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	b, started, done := t.b, t.startedAt, t.done
	now := time.Now()
	ended := t.check(now)
	end := now
	if ended {
		end = t.status.FinishedAt
	}
	d.mu.Unlock()

	// Lines up to `end`.
	var msgs []driver.LogMessage
	for _, l := range b.logLines {
		msgs = append(msgs, driver.LogMessage{Stream: driver.Stdout, Time: started, Line: []byte(l)})
	}
	if b.stderr != "" {
		msgs = append(msgs, driver.LogMessage{Stream: driver.Stderr, Time: started, Line: []byte(b.stderr)})
	}
	tick := func(n int64) driver.LogMessage {
		return driver.LogMessage{Stream: driver.Stdout, Time: started.Add(time.Duration(n) * b.logEvery),
			Line: fmt.Appendf(nil, "%s %d", b.logLines[len(b.logLines)-1], n)}
	}
	var n int64 // ticks emitted
	if b.logEvery > 0 {
		last := int64(end.Sub(started) / b.logEvery)
		if opts.Tail >= 0 && last > int64(opts.Tail) {
			// Only the last Tail ticks can survive the tail cut: skip the rest.
			n = last - int64(opts.Tail)
			msgs = msgs[:0]
		}
		for n < last {
			n++
			msgs = append(msgs, tick(n))
		}
	}
	msgs = filter(msgs, opts)
	for _, m := range msgs {
		if err := send(ctx, out, m); err != nil {
			return err
		}
	}
	if !opts.Follow || ended {
		return nil
	}
	next := time.NewTimer(time.Hour)
	defer next.Stop()
	var exit <-chan time.Time
	if !t.exitAt.IsZero() { // set at Start, never changed
		tm := time.NewTimer(time.Until(t.exitAt))
		defer tm.Stop()
		exit = tm.C
	}
	for {
		var tickC <-chan time.Time
		if b.logEvery > 0 {
			next.Reset(time.Until(started.Add(time.Duration(n+1) * b.logEvery)))
			tickC = next.C
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
		case <-exit:
		case <-tickC:
		}
		// Whatever woke us, emit every tick due by now (or by the end).
		d.mu.Lock()
		now := time.Now()
		ended := t.check(now)
		if ended {
			now = t.status.FinishedAt
		}
		d.mu.Unlock()
		if b.logEvery > 0 {
			for last := int64(now.Sub(started) / b.logEvery); n < last; {
				n++
				m := tick(n)
				if !opts.Since.IsZero() && m.Time.Before(opts.Since) {
					continue
				}
				if err := send(ctx, out, m); err != nil {
					return err
				}
			}
		}
		if ended {
			return nil
		}
	}
}

func filter(msgs []driver.LogMessage, opts driver.LogOptions) []driver.LogMessage {
	if !opts.Since.IsZero() {
		kept := msgs[:0]
		for _, m := range msgs {
			if !m.Time.Before(opts.Since) {
				kept = append(kept, m)
			}
		}
		msgs = kept
	}
	if opts.Tail >= 0 && len(msgs) > opts.Tail {
		msgs = msgs[len(msgs)-opts.Tail:]
	}
	return msgs
}

func send(ctx context.Context, out chan<- driver.LogMessage, m driver.LogMessage) error {
	select {
	case out <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List implements driver.Lister: the tasks of nodeID ("" = all) that have
// not been removed.
func (d *Driver) List(ctx context.Context, nodeID string) ([]driver.Listed, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var out []driver.Listed
	for id, t := range d.tasks {
		if t.gone || (nodeID != "" && t.spec.NodeID != nodeID) {
			continue
		}
		out = append(out, driver.Listed{TaskID: id,
			Handle:  driver.Handle{Driver: Name, ID: id, StartedAt: t.startedAt},
			Running: !t.check(now)})
	}
	return out, nil
}

// Exit ends a running task now with the given code, as if it had crashed
// (code != 0) or finished. NotFound if there is no such task.
func (d *Driver) Exit(taskID string, code int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, err := d.lookup(driver.Handle{ID: taskID})
	if err != nil {
		return err
	}
	st := driver.ExitStatus{ExitCode: code, FinishedAt: time.Now()}
	if code != 0 {
		st.Err = fmt.Sprintf("exit status %d", code)
	}
	t.end(st)
	return nil
}

// Vanish makes a task disappear as if its container had been removed behind
// the agent's back: Wait, Recover and Logs then say errdefs.NotFound.
func (d *Driver) Vanish(taskID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t := d.tasks[taskID]; t != nil {
		t.end(withTime(statusKilled))
		t.gone = true
		delete(d.tasks, taskID)
	}
}

// Spec returns the spec a task was started with.
func (d *Driver) Spec(taskID string) (driver.Spec, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tasks[taskID]
	if t == nil {
		return driver.Spec{}, false
	}
	return t.spec, true
}

// Stats reports how many tasks are running now, how many exist (running or
// ended, not removed), and how many Starts succeeded in total.
func (d *Driver) Stats() (running, existing, started int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	for _, t := range d.tasks {
		if !t.check(now) {
			running++
		}
	}
	return running, len(d.tasks), d.starts
}
