package fsm_test

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/fsm"
	"github.com/flotilla-org/flotilla/manager/state"
)

// waveTask is a new task as the orchestrator writes it for a replicated
// service: its spec, service, slot and pending status.
func waveTask(i int) *state.Task {
	t := &state.Task{SpecVersion: 1}
	t.ID = fmt.Sprintf("t%024d", i)
	t.ServiceID = "svc0123456789abcdefghijklm"
	t.Slot = i + 1
	t.DesiredState = swarm.TaskStateRunning
	t.Status = swarm.TaskStatus{Timestamp: t0, State: swarm.TaskStatePending, Message: "pending task scheduling"}
	t.Spec.ContainerSpec = &swarm.ContainerSpec{Image: "flotilla-sample:latest", Command: []string{"sample-web"},
		Labels: map[string]string{"com.example.team": "shop"}, Env: []string{"PORT=8080"}}
	t.Spec.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
	t.Spec.Placement = &swarm.Placement{}
	t.Spec.ForceUpdate = 0
	return t
}

func waveOps(n int) []state.Op {
	ops := make([]state.Op, 0, n)
	for i := range n {
		ops = append(ops, state.NewOp(state.TableTasks, state.ActionCreate, waveTask(i), 0))
	}
	return ops
}

// BenchmarkEncodeTaskBatch encodes a Raft entry of 2,000 new tasks, as a
// pass that creates a service's tasks proposes them.
func BenchmarkEncodeTaskBatch(b *testing.B) {
	ops := waveOps(2000)
	var size int
	for b.Loop() {
		data, err := fsm.EncodeBatch(state.Batch{Ops: ops, Time: t0})
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size)/2000, "B/task")
}

// BenchmarkApplyTaskBatch decodes and applies that entry on a replica.
func BenchmarkApplyTaskBatch(b *testing.B) {
	data, err := fsm.EncodeBatch(state.Batch{Ops: waveOps(2000), Time: t0})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f := fsm.New(state.NewStore())
		if r := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}); r != nil {
			b.Fatal(r)
		}
	}
}
