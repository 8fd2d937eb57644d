package state

import (
	"fmt"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Patches change a few fields of the current object at apply time. Status
// reports, scheduling decisions and desired-state changes come from
// different writers at the same moment; writing whole objects read a
// moment earlier would let one silently undo another. A patch that no
// longer applies (the task moved on) is skipped, not an error, so one stale
// report never fails a batch of a thousand.
const (
	PatchTaskStatus   = "task-status"   // TaskStatus: only forward
	PatchTaskAssign   = "task-assign"   // TaskAssign: only a pending, unplaced task
	PatchTaskShutdown = "task-shutdown" // TaskShutdown: only from desired running
	PatchTaskUnplaced = "task-unplaced" // string reason, on a pending unplaced task
	PatchNodeStatus   = "node-status"   // NodeStatus
	PatchNodeRole     = "node-role"     // NodeRole
	PatchNodeAddr     = "node-addr"     // string host:port: the node moved
)

// TaskAssign places a task on a node.
type TaskAssign struct {
	NodeID string
	Status swarm.TaskStatus
}

// TaskShutdown asks a task to stop, saying why.
type TaskShutdown struct {
	Desired swarm.TaskState
	Reason  string
}

// NodeStatus is what heartbeats learn about a node.
type NodeStatus struct {
	Status       swarm.NodeStatus
	Description  *swarm.NodeDescription `json:",omitempty"`
	Reachability swarm.Reachability     `json:",omitempty"` // for managers
}

// NodeRole records a node's held role, manager status and, optionally,
// its desired role and address.
type NodeRole struct {
	Role          swarm.NodeRole
	SpecRole      swarm.NodeRole `json:",omitempty"`
	ManagerStatus *swarm.ManagerStatus
	Addr          string            `json:",omitempty"`
	Status        *swarm.NodeStatus `json:",omitempty"`
}

// NewPatch builds a patch op.
func NewPatch(table, id, patch string, arg any) Op {
	b, err := marshalJSON(arg)
	if err != nil {
		panic(err)
	}
	return Op{Table: table, Action: ActionPatch, ID: id, Patch: patch, Object: b}
}

// TaskStateRank orders task states; observed state only moves forward.
var TaskStateRank = map[swarm.TaskState]int{
	swarm.TaskStateNew: 0, swarm.TaskStateAllocated: 1, swarm.TaskStatePending: 2, swarm.TaskStateAssigned: 3,
	swarm.TaskStateAccepted: 4, swarm.TaskStatePreparing: 5, swarm.TaskStateReady: 6, swarm.TaskStateStarting: 7,
	swarm.TaskStateRunning: 8, swarm.TaskStateComplete: 9, swarm.TaskStateShutdown: 10, swarm.TaskStateFailed: 11,
	swarm.TaskStateRejected: 12, swarm.TaskStateRemove: 13, swarm.TaskStateOrphaned: 14,
}

// TerminalState reports whether an observed task state is final.
func TerminalState(s swarm.TaskState) bool {
	return TaskStateRank[s] >= TaskStateRank[swarm.TaskStateComplete]
}

// ForwardState reports whether a task may move from one observed state to
// another: only forward, and never out of a final state.
func ForwardState(from, to swarm.TaskState) bool {
	return !TerminalState(from) && TaskStateRank[to] > TaskStateRank[from]
}

func applyPatch(cur Object, op Op) (Object, bool, error) {
	switch c := cur.(type) {
	case *Task:
		// A shallow copy is enough: patches replace whole fields and never
		// write through a pointer, slice or map shared with the old version.
		cp := *c
		t := &cp
		switch op.Patch {
		case PatchTaskStatus:
			var st swarm.TaskStatus
			if err := unmarshalJSON(op.Object, &st); err != nil {
				return nil, false, errdefs.Invalid("patch %s: %v", op.Patch, err)
			}
			if !ForwardState(t.Status.State, st.State) {
				return nil, false, nil
			}
			t.Status = st
		case PatchTaskAssign:
			var a TaskAssign
			if err := unmarshalJSON(op.Object, &a); err != nil {
				return nil, false, errdefs.Invalid("patch %s: %v", op.Patch, err)
			}
			if t.NodeID != "" && t.NodeID != a.NodeID || t.Status.State != swarm.TaskStatePending || t.DesiredState != swarm.TaskStateRunning {
				return nil, false, nil
			}
			t.NodeID, t.Status = a.NodeID, a.Status
		case PatchTaskShutdown:
			var sd TaskShutdown
			if err := unmarshalJSON(op.Object, &sd); err != nil {
				return nil, false, errdefs.Invalid("patch %s: %v", op.Patch, err)
			}
			if TaskStateRank[sd.Desired] <= TaskStateRank[t.DesiredState] {
				return nil, false, nil
			}
			t.DesiredState, t.ShutdownReason = sd.Desired, sd.Reason
		case PatchTaskUnplaced:
			var why string
			if err := unmarshalJSON(op.Object, &why); err != nil {
				return nil, false, errdefs.Invalid("patch %s: %v", op.Patch, err)
			}
			// Pinned (global) tasks have a NodeID while still pending.
			if t.Status.State != swarm.TaskStatePending || t.Status.Err == why {
				return nil, false, nil
			}
			t.Status.Err = why
		default:
			return nil, false, errdefs.Invalid("unknown task patch %q", op.Patch)
		}
		return t, true, nil
	case *Node:
		cp := *c
		n := &cp
		switch op.Patch {
		case PatchNodeStatus:
			var ns NodeStatus
			if err := unmarshalJSON(op.Object, &ns); err != nil {
				return nil, false, errdefs.Invalid("patch %s: %v", op.Patch, err)
			}
			n.Status = ns.Status
			if ns.Description != nil {
				n.Description = *ns.Description
			}
			if n.ManagerStatus != nil && ns.Reachability != "" {
				ms := *n.ManagerStatus
				ms.Reachability = ns.Reachability
				n.ManagerStatus = &ms
			}
		case PatchNodeRole:
			var nr NodeRole
			if err := unmarshalJSON(op.Object, &nr); err != nil {
				return nil, false, errdefs.Invalid("patch %s: %v", op.Patch, err)
			}
			n.Role = nr.Role
			n.ManagerStatus = nr.ManagerStatus
			if nr.SpecRole != "" {
				n.Spec.Role = nr.SpecRole
			}
			if nr.Addr != "" {
				n.Addr = nr.Addr
			}
			if nr.Status != nil {
				n.Status = *nr.Status
			}
		case PatchNodeAddr:
			var addr string
			if err := unmarshalJSON(op.Object, &addr); err != nil {
				return nil, false, errdefs.Invalid("patch %s: %v", op.Patch, err)
			}
			n.Addr = addr
			if n.ManagerStatus != nil {
				ms := *n.ManagerStatus
				ms.Addr = addr
				n.ManagerStatus = &ms
			}
		default:
			return nil, false, errdefs.Invalid("unknown node patch %q", op.Patch)
		}
		return n, true, nil
	}
	return nil, false, errdefs.Invalid("no patches for %s objects", fmt.Sprintf("%T", cur))
}
