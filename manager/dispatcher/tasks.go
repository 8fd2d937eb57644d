package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/state"
)

// longPoll bounds how long an assignments request waits for a change.
const longPoll = 20 * time.Second

// Assignments answers a node's long-poll with its task set once it
// differs from what the node has (known fingerprint). An answer with the
// set the node has (the long-poll's time is up) carries the fingerprint
// alone: the node acts only on a new one.
func (d *Dispatcher) Assignments(ctx context.Context, nodeID, known string) nodeapi.AssignmentsResponse {
	resp := waitChange(ctx, known, func() <-chan struct{} { return d.store.NodeTasksChanged(nodeID) },
		func() (nodeapi.AssignmentsResponse, string) {
			r := assignmentsIn(d.store.View(), nodeID, known)
			return r, r.Fingerprint
		})
	if resp.Fingerprint != known {
		d.counters().handedOut(resp, time.Now())
	}
	return resp
}

// waitChange answers a long-poll: build's answer as soon as its
// fingerprint differs from known, re-built whenever changed fires, or the
// current one after longPoll anyway. changed is taken before each build, so
// a change in between is never missed.
//
// An answer equal to known is not kept while waiting: a leader holds a
// long-poll per node, and each would keep a copy of its node's tasks
// (megabytes in all) only to build it again on the next change.
func waitChange[T any](ctx context.Context, known string, changed func() <-chan struct{}, build func() (T, string)) T {
	deadline := time.NewTimer(longPoll)
	defer deadline.Stop()
	for {
		ch := changed()
		if resp, fp := build(); fp != known {
			return resp
		}
		select {
		case <-ctx.Done():
			resp, _ := build()
			return resp
		case <-deadline.C:
			resp, _ := build()
			return resp
		case <-ch:
		}
	}
}

// assignmentsIn computes a node's assignment set from one view, so its
// tasks and the services they name are of the same moment: read in
// separate transactions, a service removed in between left a task without
// its service's name. The fingerprint comes first: when it is known, the
// set is not built. Each status report of a node's tasks wakes its
// long-poll, and building its whole set only to find it unchanged was
// most of what a wave of reports cost the dispatcher.
func assignmentsIn(v *state.View, nodeID, known string) nodeapi.AssignmentsResponse {
	tasks := v.TasksByNode(nodeID)
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].ID < tasks[j].ID })
	sent := tasks[:0:0]
	h := sha256.New()
	for _, t := range tasks {
		if t.Status.State == swarm.TaskStatePending || t.Status.State == swarm.TaskStateNew {
			// A global task names its node before the scheduler has
			// checked it fits: the node must not start it yet.
			continue
		}
		// The fingerprint covers what the node acts on, the task set and
		// desired states, so its own status reports do not wake it.
		h.Write([]byte(t.ID))
		h.Write([]byte{'/'})
		h.Write([]byte(t.DesiredState))
		h.Write([]byte{';'})
		sent = append(sent, t)
	}
	resp := nodeapi.AssignmentsResponse{Index: v.Index(), Fingerprint: hex.EncodeToString(h.Sum(nil)[:12])}
	if resp.Fingerprint == known {
		return resp
	}
	resp.Tasks = make([]nodeapi.Assignment, 0, len(sent))
	names := map[string]string{}
	for _, t := range sent {
		name, ok := names[t.ServiceID]
		if !ok {
			if s := v.Service(t.ServiceID); s != nil {
				name = s.Spec.Name
			}
			names[t.ServiceID] = name
		}
		task := t.Task
		task.NetworksAttachments = namedAttachments(v, task.NetworksAttachments)
		resp.Tasks = append(resp.Tasks, nodeapi.Assignment{Task: task, ServiceName: name, Ports: t.Ports, Files: taskFiles(v, t)})
	}
	return resp
}

// taskFiles returns the data of the secrets and configs a task uses, for
// a task the node is to start only: a node gets the secrets of the tasks
// assigned to it and no others, and none for a task that is ending. They
// ride in the assignment rather than a separate request so that a task
// and its files arrive together (no start without them); secrets and
// configs are immutable, so the fingerprint of the task set covers them.
// One the task names and the store no longer has is left out: the agent
// refuses to start the task without it.
func taskFiles(v *state.View, t *state.Task) []nodeapi.TaskFile {
	cs := t.Spec.ContainerSpec
	if cs == nil || t.DesiredState != swarm.TaskStateRunning || state.TerminalState(t.Status.State) {
		return nil
	}
	var out []nodeapi.TaskFile
	for _, r := range cs.Secrets {
		if r == nil {
			continue
		}
		if s := v.Secret(r.SecretID); s != nil {
			out = append(out, nodeapi.TaskFile{Kind: nodeapi.FileSecret, ID: s.ID, Data: s.Spec.Data})
		}
	}
	for _, r := range cs.Configs {
		if r == nil {
			continue
		}
		if c := v.Config(r.ConfigID); c != nil {
			out = append(out, nodeapi.TaskFile{Kind: nodeapi.FileConfig, ID: c.ID, Data: c.Spec.Data})
		}
	}
	return out
}

// Forward reports whether a task may move from one observed state to
// another: only forward, and never out of a final state.
func Forward(from, to swarm.TaskState) bool { return state.ForwardState(from, to) }

// TaskStatus queues status reports from a node; Run writes them in batches.
// A report for a task the node does not hold is dropped before it is
// queued: queued, it would replace the owner's genuine report for the same
// task waiting in the same batch.
func (d *Dispatcher) TaskStatus(nodeID string, updates []nodeapi.TaskStatusUpdate) {
	d.mu.Lock()
	for _, u := range updates {
		if t := d.store.Task(u.TaskID); t == nil || t.NodeID != nodeID {
			continue
		}
		d.statuses[u.TaskID] = statusReport{nodeID: nodeID, status: u.Status}
	}
	n := len(d.statuses)
	d.metrics.statuses(len(updates))
	d.mu.Unlock()
	if n > 0 {
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
}

type statusReport struct {
	nodeID string
	status swarm.TaskStatus
}

// statusOps turns queued reports into task updates, dropping reports from
// a node that does not hold the task and any that would move backwards.
func (d *Dispatcher) statusOps() []state.Op {
	d.mu.Lock()
	reports := d.statuses
	d.statuses = map[string]statusReport{}
	d.mu.Unlock()
	ops := make([]state.Op, 0, len(reports))
	for id, r := range reports {
		t := d.store.Task(id)
		if t == nil || t.NodeID != r.nodeID || !Forward(t.Status.State, r.status.State) {
			continue
		}
		ops = append(ops, state.NewPatch(state.TableTasks, id, state.PatchTaskStatus, r.status))
	}
	return ops
}

// namedAttachments copies a task's network attachments with each
// network's name (the state keeps only its ID): the node names its
// bridges after them before it has the routing table.
func namedAttachments(v *state.View, in []swarm.NetworkAttachment) []swarm.NetworkAttachment {
	if len(in) == 0 {
		return nil
	}
	out := make([]swarm.NetworkAttachment, len(in))
	for i, a := range in {
		out[i] = swarm.NetworkAttachment{Network: swarm.Network{ID: a.Network.ID}, Addresses: a.Addresses}
		if n := v.Network(a.Network.ID); n != nil {
			out[i].Network.Spec.Name, out[i].Network.Spec.Ingress = n.Spec.Name, n.Spec.Ingress
		}
	}
	return out
}
