package state_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// BenchmarkApplyHeartbeats applies one heartbeat tick of 1,000 nodes in
// which nothing changes: it makes no events and should allocate no more
// than the writes themselves.
func BenchmarkApplyHeartbeats(b *testing.B) {
	s := state.NewStore()
	var ops []state.Op
	for i := range 1000 {
		ops = append(ops, state.NewOp(state.TableNodes, state.ActionCreate, node(fmt.Sprintf("n%d", i), "h"), 0))
	}
	if err := s.Apply(1, batch(t0, ops...)); err != nil {
		b.Fatal(err)
	}
	ready := state.NodeStatus{Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0.1"}}
	var hb []state.Op
	for i := range 1000 {
		hb = append(hb, state.NewPatch(state.TableNodes, fmt.Sprintf("n%d", i), state.PatchNodeStatus, ready))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(uint64(i+2), batch(t1, hb...)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyTaskWave applies what a 10,000-replica service makes of
// the store: the tasks created, placed on 1,000 nodes and reported
// running, each in batches of 1,000 as the orchestrator, scheduler and
// dispatcher propose them. It reports the heap the store holds after (the
// batches' own excluded).
func BenchmarkApplyTaskWave(b *testing.B) {
	const tasks, nodes, per = 10000, 1000, 1000
	// The batches are made once: the benchmark times the store's work,
	// not the leader's encoding.
	var batches []state.Batch
	for lo := 0; lo < tasks; lo += per {
		var create, assign, run []state.Op
		for i := lo; i < lo+per; i++ {
			id := fmt.Sprintf("task%06d", i)
			create = append(create, state.NewOp(state.TableTasks, state.ActionCreate, serviceTask(id), 0))
			assign = append(assign, state.NewPatch(state.TableTasks, id, state.PatchTaskAssign,
				state.TaskAssign{NodeID: fmt.Sprintf("node%04d", i%nodes), Status: swarm.TaskStatus{Timestamp: t1, State: swarm.TaskStateAssigned}}))
			run = append(run, state.NewPatch(state.TableTasks, id, state.PatchTaskStatus, swarm.TaskStatus{Timestamp: t1, State: swarm.TaskStateRunning}))
		}
		batches = append(batches, batch(t0, create...), batch(t0, assign...), batch(t0, run...))
	}
	var heap uint64
	for b.Loop() {
		b.StopTimer()
		base := heldHeap(func() {})
		b.StartTimer()
		s := state.NewStore()
		for i, bt := range batches {
			if err := s.Apply(uint64(i+1), bt); err != nil {
				b.Fatal(err)
			}
		}
		if got := len(s.TasksByNode("node0007")); got != tasks/nodes {
			b.Fatalf("node0007 has %d tasks, want %d", got, tasks/nodes)
		}
		b.StopTimer()
		heap = heldHeap(func() { runtime.KeepAlive(s) }) - base
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/tasks, "heap-B/task")
}

// serviceTask is a task of a service whose spec says what a small
// service's does: an image, labels, an environment, a mount.
func serviceTask(id string) *state.Task {
	t := task(id)
	t.Spec.ContainerSpec = &swarm.ContainerSpec{Image: "registry.example.com/shop/web:1.4.2@sha256:" + strings.Repeat("ab", 32),
		Labels: map[string]string{"com.example.team": "shop", "com.example.tier": "front"},
		Env:    []string{"PORT=8080", "LOG_LEVEL=info", "UPSTREAM=http://api:9000"},
		Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "web-cache", Target: "/var/cache/web"}}}
	t.Spec.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
	return t
}

// heldHeap is the heap in use, after a GC, while keep is still to run.
func heldHeap(keep func()) uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	keep()
	return m.HeapAlloc
}
