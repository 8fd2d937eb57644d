package dispatcher

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// A node gets the data of the secrets and configs of the tasks it is to
// start, and of no others: not another node's, not an ending task's.
func TestAssignmentsCarryOnlyTheirTasksFiles(t *testing.T) {
	s := state.NewStore()
	sec := &state.Secret{}
	sec.ID, sec.Spec.Name, sec.Spec.Data = "s1", "pw", []byte("hunter2")
	other := &state.Secret{}
	other.ID, other.Spec.Name, other.Spec.Data = "s2", "other", []byte("not-for-a")
	cfg := &state.Config{}
	cfg.ID, cfg.Spec.Name, cfg.Spec.Data = "c1", "conf", []byte("k=v")
	task := func(id, node, secretID string, desired swarm.TaskState) *state.Task {
		tk := &state.Task{}
		tk.ID, tk.ServiceID, tk.NodeID, tk.DesiredState = id, "svc", node, desired
		tk.Status.State = swarm.TaskStateAssigned
		tk.Spec.ContainerSpec = &swarm.ContainerSpec{Image: "x",
			Secrets: []*swarm.SecretReference{{SecretID: secretID}},
			Configs: []*swarm.ConfigReference{{ConfigID: "c1"}}}
		return tk
	}
	if err := s.Apply(1, state.Batch{Time: time.Now(), Ops: []state.Op{
		state.NewOp(state.TableSecrets, state.ActionCreate, sec, 0),
		state.NewOp(state.TableSecrets, state.ActionCreate, other, 0),
		state.NewOp(state.TableConfigs, state.ActionCreate, cfg, 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("t1", "a", "s1", swarm.TaskStateRunning), 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("t2", "a", "s2", swarm.TaskStateShutdown), 0),
		state.NewOp(state.TableTasks, state.ActionCreate, task("t3", "b", "s2", swarm.TaskStateRunning), 0),
	}}); err != nil {
		t.Fatal(err)
	}
	got := assignmentsIn(s.View(), "a", "")
	files := map[string]string{}
	for _, a := range got.Tasks {
		for _, f := range a.Files {
			files[a.Task.ID+"/"+f.Kind+"/"+f.ID] = string(f.Data)
		}
	}
	if len(files) != 2 || files["t1/secret/s1"] != "hunter2" || files["t1/config/c1"] != "k=v" {
		t.Errorf("node a got files %v; want t1's secret s1 and config c1 only", files)
	}
}
