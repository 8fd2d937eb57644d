package dispatcher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/state"
)

// A report from a node that does not hold the task must not displace the
// owner's genuine report waiting in the same batch.
func TestSpoofedStatusDoesNotDisplaceOwnersReport(t *testing.T) {
	s, fr, d := setup(t, "a", "b")
	tk := &state.Task{}
	tk.ID, tk.ServiceID, tk.NodeID = "t1", "svc", "a"
	tk.DesiredState = swarm.TaskStateRunning
	tk.Status = swarm.TaskStatus{State: swarm.TaskStateAssigned}
	if err := fr.apply(state.Batch{Ops: []state.Op{state.NewOp(state.TableTasks, state.ActionCreate, tk, 0)}}); err != nil {
		t.Fatal(err)
	}
	// Both arrive before the dispatcher writes its next batch.
	d.TaskStatus("a", []nodeapi.TaskStatusUpdate{{TaskID: "t1", Status: swarm.TaskStatus{State: swarm.TaskStateRunning, Timestamp: time.Now()}}})
	d.TaskStatus("b", []nodeapi.TaskStatusUpdate{{TaskID: "t1", Status: swarm.TaskStatus{State: swarm.TaskStateFailed, Err: "spoofed", Timestamp: time.Now()}}})
	run(t, d)
	waitFor(t, 5*time.Second, func() error {
		if st := s.Task("t1").Status; st.State != swarm.TaskStateRunning {
			return fmt.Errorf("task t1 is %s (%q), want running: the owner's report was lost", st.State, st.Err)
		}
		return nil
	})
}
