package manager

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// A manager whose replica trails the state a node already has waits until
// it catches up before answering; one that does not catch up says so
// rather than answer from the past.
func TestCaughtUpWaitsForTheNodesIndex(t *testing.T) {
	st := state.NewStore()
	m := &Manager{store: st}
	apply := func(index uint64, id string) {
		t.Helper()
		op := state.NewOp(state.TableNodes, state.ActionCreate, metricNode(id, swarm.NodeStateReady, swarm.NodeAvailabilityActive, swarm.NodeRoleWorker), 0)
		if err := st.Apply(index, state.Batch{Ops: []state.Op{op}, Time: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	apply(3, "n1")
	if err := m.caughtUp(context.Background(), 3); err != nil {
		t.Fatalf("replica at the node's index: %v", err)
	}

	done := make(chan error, 1)
	go func() { done <- m.caughtUp(context.Background(), 7) }()
	apply(5, "n2")
	select {
	case err := <-done:
		t.Fatalf("answered (%v) at index 5, before reaching the node's 7", err)
	case <-time.After(50 * time.Millisecond):
	}
	apply(7, "n3")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after catching up: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still waiting after the replica reached the node's index")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := m.caughtUp(ctx, 9); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("replica that never catches up: %v, want the caller's deadline", err)
	}
}
