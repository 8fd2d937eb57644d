package state_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

// task returns a pending, unplaced task that managers want running.
func task(id string) *state.Task {
	tk := &state.Task{SpecVersion: 1}
	tk.ID = id
	tk.ServiceID = "svc"
	tk.Slot = 1
	tk.DesiredState = swarm.TaskStateRunning
	tk.Status = swarm.TaskStatus{Timestamp: t0, State: swarm.TaskStatePending, Message: "pending"}
	return tk
}

// patchStore holds tasks a, b and c (pending) and nodes n1 and n2.
func patchStore(t *testing.T) *state.Store {
	t.Helper()
	s := state.NewStore()
	mustApply(t, s, 1, batch(t0,
		state.NewOp(state.TableNodes, state.ActionCreate, node("n1", "h1"), 0),
		state.NewOp(state.TableNodes, state.ActionCreate, node("n2", "h2"), 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("a"), 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("b"), 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("c"), 0)))
	return s
}

func statusPatch(id string, st swarm.TaskState) state.Op {
	return state.NewPatch(state.TableTasks, id, state.PatchTaskStatus, swarm.TaskStatus{Timestamp: t1, State: st, Message: string(st)})
}

func assignPatch(id, nodeID string) state.Op {
	return state.NewPatch(state.TableTasks, id, state.PatchTaskAssign, state.TaskAssign{NodeID: nodeID,
		Status: swarm.TaskStatus{Timestamp: t1, State: swarm.TaskStateAssigned, Message: "assigned"}})
}

func shutdownPatch(id string, desired swarm.TaskState, reason string) state.Op {
	return state.NewPatch(state.TableTasks, id, state.PatchTaskShutdown, state.TaskShutdown{Desired: desired, Reason: reason})
}

// applyPatch applies ops at the next index and reports whether the task
// changed (its version moved to that index).
func applyPatch(t *testing.T, s *state.Store, id string, ops ...state.Op) bool {
	t.Helper()
	index := s.Index() + 1
	mustApply(t, s, index, batch(t1, ops...))
	tk := s.Task(id)
	return tk != nil && tk.Version.Index == index
}

func TestPatchTaskStatusOnlyMovesForward(t *testing.T) {
	s := patchStore(t)
	steps := []struct {
		to      swarm.TaskState
		applies bool
	}{
		{swarm.TaskStatePending, false}, // same state
		{swarm.TaskStateAssigned, true},
		{swarm.TaskStateStarting, true},
		{swarm.TaskStatePreparing, false}, // backwards
		{swarm.TaskStateRunning, true},
		{swarm.TaskStateRunning, false},
		{swarm.TaskStateAssigned, false},
		{swarm.TaskStateFailed, true},
		{swarm.TaskStateRunning, false}, // never out of a final state
		{swarm.TaskStateShutdown, false},
		{swarm.TaskStateOrphaned, false},
	}
	for i, step := range steps {
		before := *s.Task("a")
		if got := applyPatch(t, s, "a", statusPatch("a", step.to)); got != step.applies {
			t.Fatalf("step %d: %s → %s applied=%v, want %v", i, before.Status.State, step.to, got, step.applies)
		}
		after := s.Task("a")
		if !step.applies && (after.Status.State != before.Status.State || !after.Status.Timestamp.Equal(before.Status.Timestamp) || after.Version != before.Version || !after.UpdatedAt.Equal(before.UpdatedAt)) {
			t.Fatalf("step %d: a refused status patch changed the task", i)
		}
		if step.applies && (after.Status.State != step.to || !after.Status.Timestamp.Equal(t1) || !after.UpdatedAt.Equal(t1)) {
			t.Fatalf("step %d: status %+v, updated %s", i, after.Status, after.UpdatedAt)
		}
	}
	// The observed-state patch leaves what managers decide alone.
	if tk := s.Task("a"); tk.DesiredState != swarm.TaskStateRunning || tk.NodeID != "" {
		t.Fatalf("status patch touched desired state or node: %s %q", tk.DesiredState, tk.NodeID)
	}
	// Complete, shutdown, rejected and orphaned are final too.
	for _, final := range []swarm.TaskState{swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateRejected, swarm.TaskStateOrphaned} {
		s := patchStore(t)
		if !applyPatch(t, s, "b", statusPatch("b", final)) {
			t.Fatalf("pending → %s refused", final)
		}
		if applyPatch(t, s, "b", statusPatch("b", swarm.TaskStateRunning)) {
			t.Errorf("a %s task went back to running", final)
		}
	}
}

func TestPatchTaskAssign(t *testing.T) {
	s := patchStore(t)
	if !applyPatch(t, s, "a", assignPatch("a", "n1")) {
		t.Fatal("assigning a pending unplaced task failed")
	}
	if tk := s.Task("a"); tk.NodeID != "n1" || tk.Status.State != swarm.TaskStateAssigned {
		t.Fatalf("after assign: node %q state %s", tk.NodeID, tk.Status.State)
	}
	// Placed once: never moved to another node, nor assigned again.
	if applyPatch(t, s, "a", assignPatch("a", "n2")) {
		t.Fatalf("an assigned task was reassigned: node %q", s.Task("a").NodeID)
	}
	if applyPatch(t, s, "a", assignPatch("a", "n1")) {
		t.Fatal("an assigned task was assigned again")
	}
	// A running task is not assigned.
	applyPatch(t, s, "a", statusPatch("a", swarm.TaskStateRunning))
	if applyPatch(t, s, "a", assignPatch("a", "n2")) {
		t.Fatal("a running task was reassigned")
	}
	// A task managers no longer want is not placed.
	applyPatch(t, s, "b", shutdownPatch("b", swarm.TaskStateShutdown, state.ReasonScale))
	if applyPatch(t, s, "b", assignPatch("b", "n1")) {
		t.Fatal("a task desired shutdown was assigned")
	}
	if tk := s.Task("b"); tk.NodeID != "" || tk.Status.State != swarm.TaskStatePending {
		t.Fatalf("refused assign changed the task: node %q state %s", tk.NodeID, tk.Status.State)
	}
	// A pending task that names its node (global) is assigned only there.
	c := s.Task("c").Copy()
	c.NodeID = "n2"
	mustApply(t, s, s.Index()+1, batch(t1, state.NewOp(state.TableTasks, state.ActionUpdate, c, 0)))
	if applyPatch(t, s, "c", assignPatch("c", "n1")) {
		t.Fatal("a task pinned to n2 was assigned to n1")
	}
	if !applyPatch(t, s, "c", assignPatch("c", "n2")) {
		t.Fatal("a task pinned to n2 could not be assigned there")
	}
}

func TestPatchTaskAssignWakesTheNode(t *testing.T) {
	s := patchStore(t)
	n1, n2 := s.NodeTasksChanged("n1"), s.NodeTasksChanged("n2")
	applyPatch(t, s, "a", assignPatch("a", "n1"))
	if !closed(n1) {
		t.Error("n1's watch not woken by an assignment to n1")
	}
	if closed(n2) {
		t.Error("n2's watch woken by an assignment to n1")
	}
	// A write to an unplaced task wakes no node.
	n2 = s.NodeTasksChanged("n2")
	applyPatch(t, s, "b", statusPatch("b", swarm.TaskStateAssigned))
	if closed(n2) {
		t.Error("n2 woken by a write to an unplaced task")
	}
}

func TestPatchTaskShutdownOnlyRaisesDesiredState(t *testing.T) {
	s := patchStore(t)
	if applyPatch(t, s, "a", shutdownPatch("a", swarm.TaskStateRunning, "x")) {
		t.Fatal("a 'running' shutdown patch applied")
	}
	if !applyPatch(t, s, "a", shutdownPatch("a", swarm.TaskStateShutdown, state.ReasonDrain)) {
		t.Fatal("shutdown of a running task failed")
	}
	if tk := s.Task("a"); tk.DesiredState != swarm.TaskStateShutdown || tk.ShutdownReason != state.ReasonDrain {
		t.Fatalf("desired %s reason %q", tk.DesiredState, tk.ShutdownReason)
	}
	// A second decision does not rewrite the first one's reason.
	if applyPatch(t, s, "a", shutdownPatch("a", swarm.TaskStateShutdown, state.ReasonUpdate)) {
		t.Fatal("a second shutdown applied")
	}
	if tk := s.Task("a"); tk.ShutdownReason != state.ReasonDrain {
		t.Fatalf("reason rewritten to %q", tk.ShutdownReason)
	}
	if !applyPatch(t, s, "a", shutdownPatch("a", swarm.TaskStateRemove, state.ReasonRemoved)) {
		t.Fatal("shutdown → remove failed")
	}
	if applyPatch(t, s, "a", shutdownPatch("a", swarm.TaskStateShutdown, state.ReasonScale)) {
		t.Fatal("remove → shutdown applied")
	}
	if tk := s.Task("a"); tk.DesiredState != swarm.TaskStateRemove || tk.ShutdownReason != state.ReasonRemoved {
		t.Fatalf("desired %s reason %q", tk.DesiredState, tk.ShutdownReason)
	}
	// The desired-state patch leaves observed state alone.
	if tk := s.Task("a"); tk.Status.State != swarm.TaskStatePending {
		t.Fatalf("shutdown patch changed the observed state to %s", tk.Status.State)
	}
}

func TestPatchTaskUnplaced(t *testing.T) {
	s := patchStore(t)
	why := state.NewPatch(state.TableTasks, "a", state.PatchTaskUnplaced, "no suitable node")
	if !applyPatch(t, s, "a", why) || s.Task("a").Status.Err != "no suitable node" {
		t.Fatalf("unplaced reason not recorded: %+v", s.Task("a").Status)
	}
	if tk := s.Task("a"); tk.Status.State != swarm.TaskStatePending {
		t.Fatalf("state %s", tk.Status.State)
	}
	applyPatch(t, s, "b", assignPatch("b", "n1"))
	if applyPatch(t, s, "b", state.NewPatch(state.TableTasks, "b", state.PatchTaskUnplaced, "late")) {
		t.Fatal("an unplaced reason was written on an assigned task")
	}
	// Assignment clears the reason.
	applyPatch(t, s, "a", assignPatch("a", "n2"))
	if tk := s.Task("a"); tk.Status.Err != "" {
		t.Fatalf("assigned task keeps the unplaced reason %q", tk.Status.Err)
	}
}

func TestPatchNodeStatus(t *testing.T) {
	s := patchStore(t)
	desc := swarm.NodeDescription{Hostname: "renamed", Resources: swarm.Resources{NanoCPUs: 2e9}}
	mustApply(t, s, 2, batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeStatus, state.NodeStatus{
		Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0.9"}, Description: &desc,
		Reachability: swarm.ReachabilityReachable})))
	n := s.Node("n1")
	if n.Status.State != swarm.NodeStateReady || n.Status.Addr != "10.0.0.9" || n.Description.Hostname != "renamed" ||
		n.Description.Resources.NanoCPUs != 2e9 || n.Version.Index != 2 {
		t.Fatalf("node after status patch: %+v", n)
	}
	if n.ManagerStatus != nil {
		t.Fatalf("a worker got a manager status: %+v", n.ManagerStatus)
	}
	// Without a description, the description stays; the spec is never touched.
	mustApply(t, s, 3, batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeStatus, state.NodeStatus{
		Status: swarm.NodeStatus{State: swarm.NodeStateDown, Message: "heartbeat failure"}})))
	n = s.Node("n1")
	if n.Status.State != swarm.NodeStateDown || n.Status.Message != "heartbeat failure" || n.Description.Hostname != "renamed" {
		t.Fatalf("node after down patch: %+v", n)
	}
	if n.Spec.Availability != swarm.NodeAvailabilityActive || n.Spec.Role != swarm.NodeRoleWorker || n.Addr != "10.0.0.1:2377" {
		t.Fatalf("status patch touched spec or address: %+v", n)
	}
	// A manager's reachability follows.
	mgr := node("m1", "hm")
	mgr.Role, mgr.Spec.Role = swarm.NodeRoleManager, swarm.NodeRoleManager
	mgr.ManagerStatus = &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable, Addr: "10.0.0.2:2377"}
	mustApply(t, s, 4, batch(t1, state.NewOp(state.TableNodes, state.ActionCreate, mgr, 0)))
	mustApply(t, s, 5, batch(t1, state.NewPatch(state.TableNodes, "m1", state.PatchNodeStatus, state.NodeStatus{
		Status: swarm.NodeStatus{State: swarm.NodeStateDown}, Reachability: swarm.ReachabilityUnreachable})))
	if m := s.Node("m1"); m.ManagerStatus.Reachability != swarm.ReachabilityUnreachable || m.ManagerStatus.Addr != "10.0.0.2:2377" {
		t.Fatalf("manager status after patch: %+v", m.ManagerStatus)
	}
	// No reachability in the patch: unchanged.
	mustApply(t, s, 6, batch(t1, state.NewPatch(state.TableNodes, "m1", state.PatchNodeStatus, state.NodeStatus{
		Status: swarm.NodeStatus{State: swarm.NodeStateReady}})))
	if m := s.Node("m1"); m.ManagerStatus.Reachability != swarm.ReachabilityUnreachable {
		t.Fatalf("reachability changed without being given: %s", m.ManagerStatus.Reachability)
	}
}

func TestPatchNodeRole(t *testing.T) {
	s := patchStore(t)
	ms := &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable, Addr: "10.0.0.5:2377"}
	mustApply(t, s, 2, batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeRole, state.NodeRole{
		Role: swarm.NodeRoleManager, SpecRole: swarm.NodeRoleManager, ManagerStatus: ms, Addr: "10.0.0.5:2377"})))
	n := s.Node("n1")
	if n.Role != swarm.NodeRoleManager || n.Spec.Role != swarm.NodeRoleManager || n.ManagerStatus == nil ||
		!n.ManagerStatus.Leader || n.Addr != "10.0.0.5:2377" || n.Status.State != swarm.NodeStateReady {
		t.Fatalf("after promotion: %+v", n)
	}
	// Demotion: no manager status; spec role, address and status omitted → kept.
	mustApply(t, s, 3, batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeRole, state.NodeRole{Role: swarm.NodeRoleWorker})))
	n = s.Node("n1")
	if n.Role != swarm.NodeRoleWorker || n.ManagerStatus != nil || n.Spec.Role != swarm.NodeRoleManager || n.Addr != "10.0.0.5:2377" {
		t.Fatalf("after role patch without spec role: %+v", n)
	}
	// With a status (a node that leaves).
	mustApply(t, s, 4, batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeRole, state.NodeRole{
		Role: swarm.NodeRoleWorker, SpecRole: swarm.NodeRoleWorker,
		Status: &swarm.NodeStatus{State: swarm.NodeStateDown, Message: "node left the swarm"}})))
	n = s.Node("n1")
	if n.Spec.Role != swarm.NodeRoleWorker || n.Status.State != swarm.NodeStateDown || n.Status.Message != "node left the swarm" {
		t.Fatalf("after leave: %+v", n)
	}
}

func TestPatchOfDeletedObjectIsNoop(t *testing.T) {
	s := patchStore(t)
	mustApply(t, s, 2, batch(t1,
		state.NewOp(state.TableTasks, state.ActionDelete, s.Task("a"), 0),
		state.NewOp(state.TableNodes, state.ActionDelete, s.Node("n2"), 0)))
	for i, op := range []state.Op{
		statusPatch("a", swarm.TaskStateRunning),
		assignPatch("a", "n1"),
		shutdownPatch("a", swarm.TaskStateShutdown, state.ReasonScale),
		state.NewPatch(state.TableTasks, "a", state.PatchTaskUnplaced, "x"),
		state.NewPatch(state.TableNodes, "n2", state.PatchNodeStatus, state.NodeStatus{Status: swarm.NodeStatus{State: swarm.NodeStateReady}}),
		state.NewPatch(state.TableNodes, "n2", state.PatchNodeRole, state.NodeRole{Role: swarm.NodeRoleManager}),
	} {
		if err := s.Apply(uint64(3+i), batch(t1, op)); err != nil {
			t.Fatalf("patch %d of a deleted object: %v", i, err)
		}
	}
	if s.Task("a") != nil || s.Node("n2") != nil {
		t.Fatal("a patch brought a deleted object back")
	}
}

func TestBatchWithStalePatchAppliesTheRest(t *testing.T) {
	s := patchStore(t)
	mustApply(t, s, 2, batch(t1, statusPatch("b", swarm.TaskStateFailed)))
	newTask := task("d")
	mustApply(t, s, 3, batch(t1.Add(time.Second),
		statusPatch("b", swarm.TaskStateRunning),                         // stale: b already failed
		statusPatch("gone", swarm.TaskStateRunning),                      // its task no longer exists
		assignPatch("b", "n1"),                                           // no longer applies
		assignPatch("a", "n1"),                                           // good
		state.NewOp(state.TableTasks, state.ActionCreate, newTask, 0),    // good
		shutdownPatch("c", swarm.TaskStateShutdown, state.ReasonScale),   // good
		shutdownPatch("c", swarm.TaskStateShutdown, state.ReasonUpdate))) // second decision: ignored
	if tk := s.Task("b"); tk.Status.State != swarm.TaskStateFailed || tk.NodeID != "" || tk.Version.Index != 2 {
		t.Errorf("stale patches changed b: %s on %q at %d", tk.Status.State, tk.NodeID, tk.Version.Index)
	}
	if tk := s.Task("a"); tk.NodeID != "n1" || tk.Version.Index != 3 {
		t.Errorf("a not assigned: %+v", tk)
	}
	if tk := s.Task("d"); tk == nil || tk.Version.Index != 3 {
		t.Errorf("d not created")
	}
	if tk := s.Task("c"); tk.DesiredState != swarm.TaskStateShutdown || tk.ShutdownReason != state.ReasonScale {
		t.Errorf("c: desired %s reason %q", tk.DesiredState, tk.ShutdownReason)
	}
	if s.Task("gone") != nil || s.Index() != 3 {
		t.Errorf("index %d", s.Index())
	}
}

func TestBadPatchRefusesTheBatch(t *testing.T) {
	for name, bad := range map[string]state.Op{
		"unknown task patch": {Table: state.TableTasks, Action: state.ActionPatch, ID: "b", Patch: "task-teleport", Object: json.RawMessage(`{}`)},
		"unknown node patch": {Table: state.TableNodes, Action: state.ActionPatch, ID: "n1", Patch: state.PatchTaskStatus, Object: json.RawMessage(`{}`)},
		"malformed argument": {Table: state.TableTasks, Action: state.ActionPatch, ID: "b", Patch: state.PatchTaskStatus, Object: json.RawMessage(`"running"`)},
		"patch of a service": {Table: state.TableServices, Action: state.ActionPatch, ID: "svc", Patch: state.PatchTaskStatus, Object: json.RawMessage(`{}`)},
	} {
		t.Run(name, func(t *testing.T) {
			s := patchStore(t)
			if name == "patch of a service" {
				sv := &state.Service{}
				sv.ID = "svc"
				mustApply(t, s, 2, batch(t0, state.NewOp(state.TableServices, state.ActionCreate, sv, 0)))
			}
			before := dump(t, s)
			err := s.Apply(10, batch(t1, assignPatch("a", "n1"), bad))
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Fatalf("want an invalid-argument error, got %v", err)
			}
			if dump(t, s) != before {
				t.Fatal("a refused batch changed the store")
			}
		})
	}
}
