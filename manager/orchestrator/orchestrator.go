// Package orchestrator holds the leader's reconcile loop: it turns services
// into tasks (replicated slots, one per node for global services), applies
// restart policies, replaces tasks of dead or drained nodes, drives rolling
// updates and rollbacks, places pending tasks with the scheduler, and trims
// task history. Each pass reads the whole state and writes what must
// change in batched Raft entries; a pass runs on every change other than
// a task's progress towards running (coalesced; state.Store.Reshaped), on
// a timer, and at leadership start.
package orchestrator

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/ipam"
	"github.com/flotilla-org/flotilla/manager/state"
)

// Proposer writes ops (chunked into batches by the caller).
type Proposer func(ctx context.Context, ops []state.Op) error

// Scheduler is the placement logic the orchestrator depends on (the
// scheduler package's): it places pending tasks, and says on which nodes a
// global service's tasks belong.
type Scheduler interface {
	Place(nodes []*state.Node, assigned, pending []*state.Task) (placed map[string]string, unplaced map[string]string)
	Eligible(n *state.Node, s *state.Service) bool
}

// Orchestrator is the reconcile loop. Run it only on the leader.
type Orchestrator struct {
	store   *state.Store
	propose Proposer
	sched   Scheduler
	log     *slog.Logger
	now     func() time.Time
	// after is the coalescing wait between passes (time.After; tests
	// make it never end, to see that a kick does).
	after func(time.Duration) <-chan time.Time
	kick  chan struct{}
	// wake is when the last pass's earliest put-off decision falls due.
	wake time.Time
	// addrWarned is the last address error logged per service.
	addrWarned map[string]string
	// addrLock, when set, is held by whoever else allocates addresses
	// (the API's service create and update, for VIPs): a pass that gave
	// tasks addresses proposes them under it (see Pass).
	addrLock sync.Locker
	metrics  *Metrics // nil: not counted
	// downPacing paces the replacement of Down nodes' tasks when many
	// are Down at once (massdown.go); late, when set, counts the nodes
	// about to go Down (the dispatcher's).
	downPacing downPacing
	late       func() int
}

// SetLateNodes gives the orchestrator the count of nodes that missed
// their last beat but are not yet Down, for the mass-Down decision.
func (o *Orchestrator) SetLateNodes(late func() int) { o.late = late }

// SetAddressLock makes passes that allocate addresses propose under l,
// the lock the managers' own allocations of service VIPs are made under.
func (o *Orchestrator) SetAddressLock(l sync.Locker) { o.addrLock = l }

// New returns an orchestrator.
func New(store *state.Store, propose Proposer, sched Scheduler, log *slog.Logger) *Orchestrator {
	return &Orchestrator{store: store, propose: propose, sched: sched, log: log, now: time.Now, after: time.After,
		kick: make(chan struct{}, 1), addrWarned: map[string]string{}}
}

// Kick asks for a pass soon.
func (o *Orchestrator) Kick() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// idleTick is how long the orchestrator sleeps when nothing changes and
// no timed decision (restart delay, update delay, monitor window) is
// due: a pass reads the whole state, so passes on a fixed short tick cost
// a leader of 10,000 tasks 5 - 10 % of a core doing nothing. The pass
// says when its next timed decision falls (view.wakeAt); this is only
// the safety net.
const idleTick = 2 * time.Second

// passGap is the least time between two passes.
const passGap = 10 * time.Millisecond

// Run reconciles until ctx ends.
func (o *Orchestrator) Run(ctx context.Context) {
	t := time.NewTimer(idleTick)
	defer t.Stop()
	for {
		changed := o.store.Reshaped()
		began := time.Now()
		if err := o.Pass(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn("orchestrator pass failed", "err", err)
		}
		took := time.Since(began)
		wait := idleTick
		if !o.wake.IsZero() {
			// A millisecond past it, so the pass sees it due.
			wait = min(wait, max(o.wake.Sub(o.now())+time.Millisecond, 0))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-changed:
			// Coalesce a burst of changes (status reports arrive in
			// waves), for at least as long as the last pass took: a pass
			// reads the whole state, and back to back through a wave of
			// 50,000 reports it took half of the leader's CPU from the
			// heartbeats and reports that the wave is made of.
			// A kick ends the wait: the pass's own write reshapes the
			// store too, and select picks at random among ready cases,
			// so without this the next pass after a pass that made tasks
			// waited as long as that pass took, half the time.
			select {
			case <-ctx.Done():
				return
			case <-o.after(max(passGap, took)):
			case <-o.kick:
			}
		case <-o.kick:
			// A user's change, or a pass that left work for the next
			// (MaxTasksPerPass): at once. Waiting as long as the last pass
			// took (its write included) held the second half of a
			// 10,000-task service back by a third of a second.
		case <-t.C:
		}
	}
}

// Pass runs one reconciliation and writes its decisions.
func (o *Orchestrator) Pass(ctx context.Context) (err error) {
	defer o.metrics.observePass(time.Now(), &err)
	v := o.view()
	o.paceDown(v)
	defer func() { o.wake = v.wake }()
	var ops []state.Op
	for _, s := range v.services {
		if s.Spec.Mode.Global != nil {
			ops = append(ops, o.reconcileGlobal(v, s)...)
		} else {
			ops = append(ops, o.reconcileReplicated(v, s)...)
		}
		ops = append(ops, o.advanceUpdate(v, s)...)
	}
	ops = append(ops, o.orphans(v)...)
	ops = append(ops, o.reap(v)...)
	o.reportAddrErrs(v)
	if len(ops) > 0 {
		if v.addrs != nil && o.addrLock != nil {
			// The pass's addresses come from its view; a VIP the API gave
			// meanwhile may be one of them. Under the API's lock no VIP
			// appears until these tasks are in the store; if one did
			// since the view, the next pass allocates again.
			o.addrLock.Lock()
			defer o.addrLock.Unlock()
			if newVIPs(v, o.store.View()) {
				o.Kick()
				return nil
			}
		}
		ops, placed := o.placeMade(v, dedupe(ops))
		if err := o.propose(ctx, ops); err != nil {
			return err
		}
		o.metrics.wrote(ops, placed)
		if v.more {
			// The next pass goes on at once: it makes what this one left.
			o.Kick()
		}
		return nil
	}
	if ops, _ := o.schedule(v, nil, nil); len(ops) > 0 {
		if err := o.propose(ctx, ops); err != nil {
			return err
		}
		o.metrics.wrote(ops, 0)
	}
	return nil
}

// reportAddrErrs logs the services left short of tasks for want of an
// address, once per service and reason (a pass runs every 250 ms), and
// that they have tasks again once they do.
func (o *Orchestrator) reportAddrErrs(v *view) {
	for id, err := range v.addrErrs {
		if o.addrWarned[id] != err.Error() {
			o.addrWarned[id] = err.Error()
			o.log.Warn("cannot start a task of the service: no address", "service", v.byID[id].Spec.Name, "service_id", id, "err", err)
		}
	}
	for id := range o.addrWarned {
		if _, ok := v.addrErrs[id]; !ok {
			delete(o.addrWarned, id)
			if s := v.byID[id]; s != nil {
				o.log.Info("the service's tasks get addresses again", "service", s.Spec.Name, "service_id", id)
			}
		}
	}
}

// newVIPs tells whether a service in now holds a virtual IP that no
// service held in the pass's view.
func newVIPs(v *view, now *state.View) bool {
	had := map[netip.Prefix]bool{}
	for _, s := range v.services {
		for _, vip := range s.Endpoint.VirtualIPs {
			had[vip.Addr] = true
		}
	}
	for _, s := range now.Services() {
		for _, vip := range s.Endpoint.VirtualIPs {
			if !had[vip.Addr] {
				return true
			}
		}
	}
	return false
}

// addrFailed records that a task of s could not be made.
func (v *view) addrFailed(s *state.Service, err error) {
	if v.addrErrs == nil {
		v.addrErrs = map[string]error{}
	}
	v.addrErrs[s.ID] = err
}

// view is one consistent read of the state for a pass: services, nodes and
// tasks from the same moment, so a service removed meanwhile is either
// seen with its tasks or not at all (never given tasks after its removal).
type view struct {
	now      time.Time
	cluster  *state.Cluster
	services []*state.Service
	byID     map[string]*state.Service
	nodes    map[string]*state.Node
	tasks    map[string][]*state.Task // by service
	// createBudget is how many tasks this pass may still create; more
	// records that it left some for the next pass.
	createBudget int
	more         bool
	networks     []*state.Network
	addrs        *ipam.Allocator // allocator(): built when a task needs addresses
	// addrErrs are the services whose tasks this pass could not make for
	// want of an address, and why.
	addrErrs map[string]error
	// wake is the earliest time a decision this pass put off falls due
	// (zero: none); the next pass runs then even if nothing changes.
	wake time.Time
	// replaceDown are the Down nodes whose tasks may be replaced in this
	// pass; nil: all of them (massdown.go).
	replaceDown map[string]bool
	// made are the tasks this pass creates, by ID: their ops are encoded
	// once they are placed (placeMade).
	made map[string]*state.Task
}

// wakeAt records that a decision waits until t.
func (v *view) wakeAt(t time.Time) {
	if v.wake.IsZero() || t.Before(v.wake) {
		v.wake = t
	}
}

// MaxTasksPerPass bounds the tasks one pass creates: a pass's memory and
// Raft entries stay bounded whatever a spec asks for, and the passes that
// follow see a removed service or a lost leadership before going on. A
// service of up to this many replicas is made and placed in one write.
const MaxTasksPerPass = 10000

func (o *Orchestrator) view() *view {
	sv := o.store.View()
	nodes, tasks := sv.Nodes(), sv.Tasks()
	v := &view{now: o.now(), cluster: sv.Cluster(), services: sv.Services(), networks: sv.Networks(), createBudget: MaxTasksPerPass,
		nodes: make(map[string]*state.Node, len(nodes))}
	v.byID = make(map[string]*state.Service, len(v.services))
	for _, s := range v.services {
		v.byID[s.ID] = s
	}
	for _, n := range nodes {
		v.nodes[n.ID] = n
	}
	// Each service's tasks in one slice of its size: a pass runs every
	// few seconds over all tasks, and growing the slices by appending
	// was a fifth of what an idle pass allocated.
	count := make(map[string]int, len(v.services))
	for _, t := range tasks {
		count[t.ServiceID]++
	}
	v.tasks = make(map[string][]*state.Task, len(count))
	for _, t := range tasks {
		ts, ok := v.tasks[t.ServiceID]
		if !ok {
			ts = make([]*state.Task, 0, count[t.ServiceID])
		}
		v.tasks[t.ServiceID] = append(ts, t)
	}
	return v
}

// dedupe keeps the first op of each kind per object: one pass may decide
// twice about a task (e.g. shut down for its node, then for the update);
// the first decision is the one that explains why.
func dedupe(ops []state.Op) []state.Op {
	seen := map[string]bool{}
	out := ops[:0:0]
	for _, op := range ops {
		k := op.Table + "/" + op.ID + "/" + string(op.Action) + "/" + op.Patch
		if !seen[k] {
			seen[k] = true
			out = append(out, op)
		}
	}
	return out
}

// Terminal reports whether an observed state is final (the one task-state
// order, manager/state).
func Terminal(s swarm.TaskState) bool { return state.TerminalState(s) }

// active reports whether managers want the task running.
func active(t *state.Task) bool { return t.DesiredState == swarm.TaskStateRunning }

func nodeUsable(n *state.Node) bool {
	return n != nil && n.Status.State == swarm.NodeStateReady && n.Spec.Availability == swarm.NodeAvailabilityActive
}

func shutdownOp(t *state.Task, reason string) state.Op {
	return state.NewPatch(state.TableTasks, t.ID, state.PatchTaskShutdown, state.TaskShutdown{Desired: swarm.TaskStateShutdown, Reason: reason})
}
