package agent

import (
	"context"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
)

func listed(t *testing.T, d *fake.Driver, nodeID string) []driver.Listed {
	t.Helper()
	l, err := d.List(context.Background(), nodeID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A node that leaves or is removed stops and removes all its tasks.
func TestRemoveAllStopsEveryTask(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	h.e.Sync(assigned(mkTask("t1", 1, swarm.TaskStateRunning), mkTask("t2", 2, swarm.TaskStateRunning)))
	h.waitState("t1", swarm.TaskStateRunning)
	h.waitState("t2", swarm.TaskStateRunning)
	h.e.RemoveAll(context.Background())
	if l := listed(t, drv, ""); len(l) != 0 {
		t.Fatalf("after RemoveAll the driver still holds %v", l)
	}
	if _, _, ok := h.e.Handle("t1"); ok {
		t.Error("after RemoveAll the executor still records t1")
	}
}

// Tasks a former identity of the same data dir left behind (it left and
// joined again as a new node) are removed when the executor starts.
func TestStartRemovesTasksOfFormerIdentity(t *testing.T) {
	drv := fake.New()
	if _, err := drv.Start(context.Background(), driver.Spec{TaskID: "old", NodeID: "old-node", Image: "img"}); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.Start(context.Background(), driver.Spec{TaskID: "other", NodeID: "another-node", Image: "img"}); err != nil {
		t.Fatal(err)
	}
	_, err := startExec(t, drv, "", func(e *Executor) { e.FormerNodeIDs = []string{"old-node"} })
	if err != nil {
		t.Fatal(err)
	}
	l := listed(t, drv, "")
	if len(l) != 1 || l[0].TaskID != "other" {
		t.Fatalf("after start the driver holds %v, want only the task of another node", l)
	}
}
