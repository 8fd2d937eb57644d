package state

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// AppendBatch writes the very bytes MarshalJSON does, for batches of every
// shape: the log's format does not change, so managers of either version
// read each other's entries.
func TestAppendBatchSameBytesAsMarshal(t *testing.T) {
	task := &Task{Task: swarm.Task{ID: "t1", ServiceID: "s1", NodeID: "n1", Slot: 3, DesiredState: swarm.TaskStateRunning,
		Spec:   swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "img", Labels: map[string]string{"a<b": "c&d\u2028"}}},
		Status: swarm.TaskStatus{State: swarm.TaskStatePending, Message: `quote " and \ backslash`, Timestamp: time.Unix(1700000000, 123456789).UTC()}}}
	strs := []string{"", "tasks", "abc123", `we"ird`, `back\slash`, "<html>", "a&b", "tab\there", "é", "\u2028", "\x00", "\xff"}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return strs[r.IntN(len(strs))] }
	batches := []Batch{
		{},
		{Ops: []Op{}},
		{Ops: []Op{NewOp(TableTasks, ActionCreate, task, 0)}, Time: time.Now()}, // with a monotonic reading
		{Ops: []Op{NewOp(TableTasks, ActionUpdate, task, 7), NewPatch(TableTasks, "t1", PatchTaskStatus, task.Status),
			{Table: TableTasks, Action: ActionDelete, ID: "t1"}}, Time: time.Unix(1, 0).In(time.FixedZone("x", 3600))},
	}
	for range 200 {
		var b Batch
		for range r.IntN(5) {
			op := Op{Table: pick(), Action: Action(pick()), ID: pick(), Patch: pick()}
			if r.IntN(2) == 0 {
				op.ExpectVersion = r.Uint64N(1 << uint(r.IntN(64)))
			}
			switch r.IntN(4) {
			case 0:
				op.Object = json.RawMessage(`null`)
			case 1:
				op.Object, _ = marshalJSON(map[string]any{pick(): pick(), "n": r.IntN(100)})
			case 2:
				op.Object, _ = marshalJSON(pick())
			}
			b.Ops = append(b.Ops, op)
		}
		b.Time = time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).UTC()
		batches = append(batches, b)
	}
	for i, b := range batches {
		want, err := MarshalJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendBatch([]byte("prefix"), b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("batch %d:\n got %s\nwant %s", i, got, want)
		}
		// The size is a hint: strings that need escaping grow past it.
		if n := BatchSize(b); i < 4 && n < len(want) {
			t.Errorf("batch %d: BatchSize %d < %d written", i, n, len(want))
		}
	}
}

// AppendBatch writes the fields it knows by hand: a field added to Op or
// Batch would be left out of the log without a word. This names the
// fields it writes, so such a change fails here first.
func TestAppendBatchKnowsEveryField(t *testing.T) {
	for typ, want := range map[reflect.Type][]string{
		reflect.TypeFor[Op]():    {"Table", "Action", "ID", "ExpectVersion", "Object", "Patch"},
		reflect.TypeFor[Batch](): {"Ops", "Time"},
	} {
		var got []string
		for f := range typ.Fields() {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s has fields %v; AppendBatch writes %v: teach it the new ones", typ, got, want)
		}
	}
}

func BenchmarkEncodeBatch(b *testing.B) {
	task := &Task{Task: swarm.Task{ID: "abcdefghijklmnopqrstuvwxy", ServiceID: "s1", NodeID: "n1", DesiredState: swarm.TaskStateRunning,
		Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "img"}}}}
	var batch Batch
	for range 1000 {
		batch.Ops = append(batch.Ops, NewOp(TableTasks, ActionCreate, task, 0))
	}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := MarshalJSON(batch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := AppendBatch(make([]byte, 0, BatchSize(batch)), batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
