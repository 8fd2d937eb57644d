package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/manager/state"
)

// serviceProgressInterval is how often a convergence wait polls the
// daemon (docker polls every 200ms too). Tests make it tiny.
var serviceProgressInterval = 200 * time.Millisecond

const (
	// maxTaskLines is the most per-task lines the progress display draws;
	// beyond it only the overall line is shown (docker's limit).
	maxTaskLines = 20
	// maxFailuresPerSlot is how many tasks of one slot (one node for a
	// global service) may fail during a wait before it gives up.
	maxFailuresPerSlot = 3
	// maxInspectsPerPoll bounds the tasks inspected per poll to learn why
	// they left the running set.
	maxInspectsPerPoll = 20
	progressBarWidth   = 50
)

// convergeOp is what a convergence wait follows.
type convergeOp int

const (
	opCreate convergeOp = iota
	opUpdate
	opRollback
)

// waitOptions configure waitOnService.
type waitOptions struct {
	op convergeOp
	// before is the service's update status before the change; seen again
	// unchanged, it is stale and ignored.
	before  *swarm.UpdateStatus
	quiet   bool
	timeout time.Duration // no progress for this long fails the wait; 0: never
}

// taskStateRank places a task state in the one task-state order
// (manager/state), from 1; 0 is a state the CLI does not know. The
// progress bars show how far a task got towards running.
func taskStateRank(s swarm.TaskState) int {
	if r, ok := state.TaskStateRank[s]; ok {
		return r + 1
	}
	return 0
}

var runningRank = taskStateRank(swarm.TaskStateRunning)

func terminalState(s swarm.TaskState) bool { return state.TerminalState(s) }

// failedState reports whether a task in state s ended without being asked
// to: it failed, was rejected by its node, or exited.
func failedState(s swarm.TaskState) bool {
	return s == swarm.TaskStateFailed || s == swarm.TaskStateRejected || s == swarm.TaskStateComplete
}

// waitOnService shows the convergence of a service on out until it
// converges (nil), cannot converge (an error saying why), or the user
// interrupts the wait (nil: the operation goes on in the background).
func waitOnService(ctx context.Context, api apiClient, out io.Writer, serviceID string, wo waitOptions) error {
	if wo.quiet {
		out = io.Discard
	}
	sigCtx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	w := &convergeWatch{
		api:      api,
		id:       serviceID,
		wo:       wo,
		disp:     newProgressDisplay(out),
		slotMap:  map[int]int{},
		prev:     map[string]swarm.Task{},
		failed:   map[string]bool{},
		failures: map[string]int{},
	}
	err := w.run(sigCtx)
	w.disp.flush()
	if err != nil && ctx.Err() == nil && sigCtx.Err() != nil {
		fmt.Fprintln(out, "Operation continuing in background.")
		fmt.Fprintf(out, "Use `flotilla service ps %s` to check progress.\n", serviceID)
		return nil
	}
	return err
}

// convergeWatch follows one service until it converges.
type convergeWatch struct {
	api  apiClient
	id   string
	wo   waitOptions
	disp *progressDisplay

	started     bool
	name        string    // the service's name, for messages
	since       time.Time // failures of tasks created earlier are not ours
	initialized bool      // the task lines have been laid out
	slotMap     map[int]int
	nodes       map[string]swarm.Node
	rollback    bool

	prev     map[string]swarm.Task // tasks of the previous poll
	failed   map[string]bool       // task IDs counted as failures
	failures map[string]int        // failures by slot (node for global)

	convergedAt     time.Time
	sig             string
	lastChange      time.Time
	running, wanted int
}

func (w *convergeWatch) run(ctx context.Context) error {
	for {
		done, err := w.poll(ctx)
		w.disp.flush()
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(serviceProgressInterval):
		}
	}
}

// poll looks at the service once; done means it has converged.
func (w *convergeWatch) poll(ctx context.Context) (done bool, _ error) {
	res, err := w.api.ServiceInspect(ctx, w.id, client.ServiceInspectOptions{})
	if err != nil {
		return false, err
	}
	svc := res.Service
	now := time.Now()
	if !w.started {
		w.started, w.lastChange = true, now
		w.name = svc.Spec.Name
		if w.name == "" {
			w.name = w.id
		}
		w.since = svc.UpdatedAt
		if w.wo.op == opCreate {
			w.since = svc.CreatedAt
		} else if us := svc.UpdateStatus; us != nil && us.StartedAt != nil && !sameUpdateStatus(us, w.wo.before) && us.StartedAt.Before(w.since) {
			w.since = *us.StartedAt
		}
	}

	w.layout(svc)

	// Where the daemon's updater stands.
	settled := true
	if us := svc.UpdateStatus; us != nil && !sameUpdateStatus(us, w.wo.before) {
		switch us.State {
		case swarm.UpdateStateUpdating:
			w.rollback, settled = false, false
		case swarm.UpdateStatePaused:
			return false, fmt.Errorf("service %s: update paused: %s", w.name, us.Message)
		case swarm.UpdateStateRollbackStarted:
			if us.Message != "" {
				w.disp.set("rollback", us.Message, "")
			}
			w.rollback, settled = true, false
		case swarm.UpdateStateRollbackPaused:
			return false, fmt.Errorf("service %s: rollback paused: %s", w.name, us.Message)
		case swarm.UpdateStateRollbackCompleted:
			w.rollback = true
			if w.wo.op != opRollback {
				if us.Message != "" {
					w.disp.set("rollback", us.Message, "")
				}
				return false, fmt.Errorf("service %s: update failed and was rolled back: %s", w.name, us.Message)
			}
		}
	}
	cfg := svc.Spec.UpdateConfig
	if w.rollback && svc.Spec.RollbackConfig != nil {
		cfg = svc.Spec.RollbackConfig
	}
	monitor := defaultUpdateMonitor
	if cfg != nil && cfg.Monitor > 0 {
		monitor = cfg.Monitor
	}

	f := make(client.Filters).Add("service", svc.ID).Add("desired-state", string(swarm.TaskStateRunning))
	tl, err := w.api.TaskList(ctx, client.TaskListOptions{Filters: f})
	if err != nil {
		return false, err
	}
	tasks := tl.Items
	// Tasks on nodes that are down do not count (as in docker).
	var active map[string]bool
	if nl, err := w.api.NodeList(ctx, client.NodeListOptions{}); err == nil {
		active = map[string]bool{}
		w.nodes = map[string]swarm.Node{}
		for _, n := range nl.Items {
			w.nodes[n.ID] = n
			if n.Status.State != swarm.NodeStateDown {
				active[n.ID] = true
			}
		}
	}

	// Tasks the daemon has already shut down: one rejected or failed
	// between two polls is never in the list above, and must still count
	// toward the slot's failures. Only looked up when something moved (a
	// task not seen before, or an empty slot), so a large service that
	// is just waiting does not have its whole history listed every poll.
	var ended []swarm.Task
	if w.endedMayHide(svc, tasks) {
		ef := make(client.Filters).Add("service", svc.ID).Add("desired-state", string(swarm.TaskStateShutdown))
		if el, err := w.api.TaskList(ctx, client.TaskListOptions{Filters: ef}); err == nil {
			ended = el.Items
		} else if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}

	if err := w.checkFailures(ctx, svc, tasks, ended); err != nil {
		return false, err
	}
	var converged bool
	if svc.Spec.Mode.Global != nil {
		converged = w.global(svc, tasks, active)
	} else {
		converged = w.replicated(svc, tasks, active)
	}
	converged = converged && settled

	if converged {
		if w.convergedAt.IsZero() {
			w.convergedAt = now
			w.disp.set("verify", fmt.Sprintf("Waiting %s to verify that tasks are stable...", roundSeconds(monitor)), "")
		}
		left := monitor - now.Sub(w.convergedAt)
		if left <= 0 {
			w.disp.set("verify", "Service converged", "")
			return true, nil
		}
		w.disp.setTTY("verify", fmt.Sprintf("Waiting %s to verify that tasks are stable...", roundSeconds(left)))
		return false, nil
	}
	if !w.convergedAt.IsZero() {
		w.disp.set("verify", "Detected task failure", "")
		w.convergedAt = time.Time{}
	}
	if sig := progressSignature(svc, tasks, w.running); sig != w.sig {
		w.sig, w.lastChange = sig, now
	} else if w.wo.timeout > 0 {
		allowance := time.Duration(0)
		if !settled && cfg != nil {
			allowance = cfg.Delay + monitor
		}
		if stalled := now.Sub(w.lastChange); stalled > w.wo.timeout+allowance {
			return false, w.stallError(tasks, stalled)
		}
	}
	return false, nil
}

func roundSeconds(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprintf("%d %s", s, plural(s, "second"))
}

func sameUpdateStatus(a, b *swarm.UpdateStatus) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.State == b.State && a.Message == b.Message && timePtrEqual(a.StartedAt, b.StartedAt) && timePtrEqual(a.CompletedAt, b.CompletedAt)
}

func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// progressSignature changes whenever anything moves: a task changes state,
// a task comes or goes, the running count or the update status changes.
func progressSignature(svc swarm.Service, tasks []swarm.Task, running int) string {
	parts := make([]string, 0, len(tasks)+2)
	for _, t := range tasks {
		parts = append(parts, t.ID+":"+string(t.Status.State))
	}
	sort.Strings(parts)
	if us := svc.UpdateStatus; us != nil {
		parts = append(parts, "update:"+string(us.State))
	}
	parts = append(parts, fmt.Sprint("running:", running))
	return strings.Join(parts, ",")
}

// usable reports whether t counts towards convergence: known states, on a
// node that is not down, and made from the service's current spec.
func usable(t swarm.Task, svc swarm.Service, active map[string]bool) bool {
	if taskStateRank(t.DesiredState) == 0 || taskStateRank(t.Status.State) == 0 {
		return false
	}
	if t.NodeID != "" && active != nil && !active[t.NodeID] {
		return false
	}
	return upToDate(t, svc)
}

// upToDate reports whether t was made from the service's current task
// template, judged by the fields an update changes most (a task that
// carries no spec is taken as current).
func upToDate(t swarm.Task, svc swarm.Service) bool {
	a, b := t.Spec.ContainerSpec, svc.Spec.TaskTemplate.ContainerSpec
	if a == nil || b == nil {
		return true
	}
	return t.Spec.ForceUpdate == svc.Spec.TaskTemplate.ForceUpdate &&
		a.Image == b.Image && a.Dir == b.Dir && a.User == b.User && a.Hostname == b.Hostname &&
		slices.Equal(a.Command, b.Command) && slices.Equal(a.Args, b.Args) && slices.Equal(a.Env, b.Env) &&
		maps.Equal(a.Labels, b.Labels)
}

// preferTask reports whether t should represent its slot rather than cur:
// the lower desired state wins, then the lower observed state (as docker).
func preferTask(t, cur swarm.Task) bool {
	dt, dc := taskStateRank(t.DesiredState), taskStateRank(cur.DesiredState)
	if dt != dc {
		return dt < dc
	}
	return taskStateRank(t.Status.State) < taskStateRank(cur.Status.State)
}

func (w *convergeWatch) overall(running, total int) {
	w.running, w.wanted = running, total
	if w.rollback {
		w.disp.set("overall progress", fmt.Sprintf("rolling back update: %d out of %d tasks", running, total), "")
		return
	}
	w.disp.set("overall progress", fmt.Sprintf("%d out of %d tasks", running, total), "")
}

// layout draws the first lines of a replicated service: the overall line
// and one line per slot (global services wait for their first tasks).
func (w *convergeWatch) layout(svc swarm.Service) {
	if w.initialized || svc.Spec.Mode.Global != nil {
		return
	}
	w.initialized = true
	replicas := desiredReplicas(svc)
	w.overall(0, replicas)
	if replicas <= maxTaskLines {
		for i := 1; i <= replicas; i++ {
			w.disp.set(slotLineID(i, replicas), "", "")
		}
	}
}

// desiredReplicas is a replicated service's replica count (the daemon's
// default of 1 when unset).
func desiredReplicas(svc swarm.Service) int {
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		return int(*r.Replicas)
	}
	return 1
}

func (w *convergeWatch) replicated(svc swarm.Service, tasks []swarm.Task, active map[string]bool) bool {
	replicas := desiredReplicas(svc)
	bySlot := map[int]swarm.Task{}
	for _, t := range tasks {
		if !usable(t, svc, active) {
			continue
		}
		if cur, ok := bySlot[t.Slot]; ok && !preferTask(t, cur) {
			continue
		}
		bySlot[t.Slot] = t
	}
	running := 0
	for _, slot := range slices.Sorted(maps.Keys(bySlot)) {
		t := bySlot[slot]
		if t.Status.State == swarm.TaskStateRunning && !terminalState(t.DesiredState) {
			running++
		}
		if m := w.mappedSlot(slot); replicas <= maxTaskLines && m <= replicas {
			w.taskLine(slotLineID(m, replicas), t)
		}
	}
	w.overall(running, replicas)
	return running == replicas
}

// mappedSlot numbers slots 1, 2, ... in the order they are seen (slot
// numbers need not be dense).
func (w *convergeWatch) mappedSlot(slot int) int {
	m := w.slotMap[slot]
	if m == 0 {
		m = len(w.slotMap) + 1
		w.slotMap[slot] = m
	}
	return m
}

func slotLineID(i, n int) string { return fmt.Sprintf("%d/%d", i, n) }

func (w *convergeWatch) global(svc swarm.Service, tasks []swarm.Task, active map[string]bool) bool {
	byNode := map[string]swarm.Task{}
	for _, t := range tasks {
		if t.NodeID == "" || !usable(t, svc, active) {
			continue
		}
		if cur, ok := byNode[t.NodeID]; ok && !preferTask(t, cur) {
			continue
		}
		byNode[t.NodeID] = t
	}
	n := len(byNode)
	if !w.initialized {
		if n == 0 {
			// Either the tasks are not made yet, or no node is eligible.
			w.disp.set("overall progress", "waiting for new tasks", "")
			return false
		}
		w.initialized = true
	}
	ids := slices.Collect(maps.Keys(byNode))
	sort.Slice(ids, func(i, j int) bool { return naturalLess(w.nodeName(ids[i]), w.nodeName(ids[j])) })
	running := 0
	for _, id := range ids {
		t := byNode[id]
		if t.Status.State == swarm.TaskStateRunning && !terminalState(t.DesiredState) {
			running++
		}
		if n <= maxTaskLines {
			w.taskLine(w.nodeName(id), t)
		}
	}
	w.overall(running, n)
	return running == n
}

// nodeName is a node's hostname, or its short ID when unknown.
func (w *convergeWatch) nodeName(id string) string {
	if n, ok := w.nodes[id]; ok && n.Description.Hostname != "" {
		return n.Description.Hostname
	}
	return truncID(id)
}

// taskLine shows t on line id: its error, or its state with a bar.
func (w *convergeWatch) taskLine(id string, t swarm.Task) {
	if t.Status.Err != "" {
		w.disp.set(id, oneLine(t.Status.Err), "")
		return
	}
	if terminalState(t.DesiredState) || terminalState(t.Status.State) {
		return
	}
	state := string(t.Status.State)
	w.disp.set(id, state, fmt.Sprintf("%-9s %s", state, progressBar(taskStateRank(t.Status.State), runningRank)))
}

func progressBar(cur, total int) string {
	n := cur * progressBarWidth / total
	n = min(max(n, 0), progressBarWidth)
	return "[" + strings.Repeat("=", n) + ">" + strings.Repeat(" ", progressBarWidth-n) + "]"
}

// oneLine flattens and shortens an error for a progress line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return ellipsis(s, 75)
}

// ellipsis shortens s to at most n runes, ending with "…" when cut.
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// endedMayHide reports whether a task may have ended unseen since the
// last poll: a task appeared that was not listed before (it may replace
// one that failed), or a replicated service has an empty slot.
func (w *convergeWatch) endedMayHide(svc swarm.Service, tasks []swarm.Task) bool {
	for _, t := range tasks {
		if _, seen := w.prev[t.ID]; !seen {
			return true
		}
	}
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		slots := map[int]bool{}
		for _, t := range tasks {
			slots[t.Slot] = true
		}
		return uint64(len(slots)) < *r.Replicas
	}
	return false
}

// checkFailures finds the tasks of this operation that failed, were
// rejected or exited, and gives up when a slot keeps failing. The daemon
// shuts a failed task down (and starts a replacement) within moments, so
// besides failed tasks still listed it looks at the tasks that left the
// running set since the last poll.
func (w *convergeWatch) checkFailures(ctx context.Context, svc swarm.Service, tasks, ended []swarm.Task) error {
	cur := make(map[string]swarm.Task, len(tasks))
	var suspects []swarm.Task
	for _, t := range tasks {
		cur[t.ID] = t
		if failedState(t.Status.State) {
			suspects = append(suspects, t)
		}
	}
	listed := make(map[string]bool, len(ended))
	for _, t := range ended {
		listed[t.ID] = true
		if failedState(t.Status.State) {
			suspects = append(suspects, t)
		}
	}
	inspected := 0
	for _, id := range slices.Sorted(maps.Keys(w.prev)) {
		if _, still := cur[id]; still || listed[id] || w.failed[id] || inspected >= maxInspectsPerPoll {
			continue
		}
		inspected++
		res, err := w.api.TaskInspect(ctx, id, client.TaskInspectOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Gone already, or unreachable: best effort, a slot that
			// keeps failing is seen again.
			continue
		}
		suspects = append(suspects, res.Task)
	}
	w.prev = cur

	for _, t := range suspects {
		if w.failed[t.ID] || !failedState(t.Status.State) || t.CreatedAt.Before(w.since) {
			continue
		}
		w.failed[t.ID] = true
		key, line := w.failureKey(svc, t)
		w.failures[key]++
		if line != "" {
			w.disp.set(line, oneLine(taskReason(t)), "")
		}
		limit, restarts := failureLimit(svc, t)
		if n := w.failures[key]; n >= limit {
			return w.failureError(svc, t, n, restarts)
		}
	}
	return nil
}

// failureKey groups failures by slot (by node for global services) and
// names the progress line that shows them, if any.
func (w *convergeWatch) failureKey(svc swarm.Service, t swarm.Task) (key, line string) {
	if svc.Spec.Mode.Global != nil || t.Slot == 0 {
		if w.initialized && len(w.prev) <= maxTaskLines {
			line = w.nodeName(t.NodeID)
		}
		return "node:" + t.NodeID, line
	}
	replicas := desiredReplicas(svc)
	if m := w.mappedSlot(t.Slot); replicas <= maxTaskLines && m <= replicas {
		line = slotLineID(m, replicas)
	}
	return fmt.Sprint("slot:", t.Slot), line
}

// failureLimit is how many failures of one slot end the wait, and whether
// the restart policy restarts a task that ended as t did.
func failureLimit(svc swarm.Service, t swarm.Task) (limit int, restarts bool) {
	limit = maxFailuresPerSlot
	rp := svc.Spec.TaskTemplate.RestartPolicy
	if rp == nil {
		return limit, true
	}
	switch rp.Condition {
	case swarm.RestartPolicyConditionNone:
		return 1, false
	case swarm.RestartPolicyConditionOnFailure:
		if t.Status.State == swarm.TaskStateComplete {
			return 1, false
		}
	}
	if rp.MaxAttempts != nil && *rp.MaxAttempts > 0 && int(*rp.MaxAttempts)+1 < limit {
		limit = int(*rp.MaxAttempts) + 1
	}
	return limit, true
}

func taskReason(t swarm.Task) string {
	switch {
	case t.Status.Err != "":
		return t.Status.Err
	case t.Status.Message != "":
		return t.Status.Message
	}
	return "task " + string(t.Status.State)
}

func (w *convergeWatch) taskName(svc swarm.Service, t swarm.Task) string {
	if svc.Spec.Mode.Global != nil || t.Slot == 0 {
		return fmt.Sprintf("%s on node %s", w.name, w.nodeName(t.NodeID))
	}
	return fmt.Sprintf("%s.%d", w.name, t.Slot)
}

func (w *convergeWatch) failureError(svc swarm.Service, t swarm.Task, n int, restarts bool) error {
	verb := map[swarm.TaskState]string{
		swarm.TaskStateFailed:   "failed",
		swarm.TaskStateRejected: "was rejected",
		swarm.TaskStateComplete: "exited",
	}[t.Status.State]
	name := w.taskName(svc, t)
	if !restarts {
		cond := svc.Spec.TaskTemplate.RestartPolicy.Condition
		return fmt.Errorf("service %s cannot converge: task %s %s and its restart policy (condition %s) does not restart it: %s",
			w.name, name, verb, cond, taskReason(t))
	}
	times := fmt.Sprintf("%d times", n)
	if n == 1 {
		times = "and will not be restarted again"
	}
	return fmt.Errorf("service %s cannot converge: task %s %s %s: %s", w.name, name, verb, times, taskReason(t))
}

func (w *convergeWatch) stallError(tasks []swarm.Task, stalled time.Duration) error {
	state := fmt.Sprintf("%d out of %d tasks running", w.running, w.wanted)
	if !w.initialized {
		state = "no tasks yet: is any node eligible?"
	}
	msg := fmt.Sprintf("service %s did not converge: no progress for %s (%s)", w.name, stalled.Round(time.Second), state)
	for _, t := range tasks {
		if t.Status.Err != "" {
			msg += fmt.Sprintf("; task %s: %s", truncID(t.ID), oneLine(t.Status.Err))
			break
		}
	}
	return errors.New(msg + "\nSee 'flotilla service ps " + w.name + "'.")
}

// progressDisplay draws docker-style progress lines ("ID: text"). On a
// terminal it redraws them in place, with bars; otherwise it prints a
// line whenever one's text changes.
type progressDisplay struct {
	w     io.Writer
	tty   bool
	width int // terminal columns; lines are cut to fit, so redraws stay aligned
	order []string
	lines map[string]*progressLine
	drawn int  // terminal: lines drawn by the last flush
	dirty bool // terminal: something changed since
}

type progressLine struct {
	text    string // plain text, printed when it changes
	tty     string // what a terminal shows instead, if not empty
	printed string
}

func newProgressDisplay(w io.Writer) *progressDisplay {
	d := &progressDisplay{w: w, tty: isTerminal(w), lines: map[string]*progressLine{}}
	if f, ok := w.(*os.File); ok && d.tty {
		d.width = terminalWidth(f)
	}
	return d
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (d *progressDisplay) line(id string) *progressLine {
	l, ok := d.lines[id]
	if !ok {
		l = &progressLine{}
		d.lines[id] = l
		d.order = append(d.order, id)
		d.dirty = true
	}
	return l
}

// set gives line id its text (and optionally a richer terminal text).
func (d *progressDisplay) set(id, text, tty string) {
	l := d.line(id)
	if l.text != text || l.tty != tty {
		l.text, l.tty, d.dirty = text, tty, true
	}
}

// setTTY changes only what a terminal shows on line id.
func (d *progressDisplay) setTTY(id, tty string) {
	l := d.line(id)
	if l.tty != tty {
		l.tty, d.dirty = tty, true
	}
}

func (d *progressDisplay) flush() {
	var b strings.Builder
	if d.tty {
		if !d.dirty {
			return
		}
		if d.drawn > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", d.drawn)
		}
		for _, id := range d.order {
			l := d.lines[id]
			text := l.tty
			if text == "" {
				text = l.text
			}
			width := d.width
			if width <= 0 {
				width = 80
			}
			// A line that wrapped would throw the cursor arithmetic off.
			fmt.Fprintf(&b, "\r\x1b[2K%s\n", ellipsis(id+": "+text, width-1))
		}
		d.drawn, d.dirty = len(d.order), false
	} else {
		for _, id := range d.order {
			l := d.lines[id]
			if l.text != "" && l.text != l.printed {
				fmt.Fprintf(&b, "%s: %s\n", id, l.text)
				l.printed = l.text
			}
		}
	}
	if b.Len() > 0 {
		_, _ = io.WriteString(d.w, b.String())
	}
}
