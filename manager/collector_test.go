package manager

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flotilla-org/flotilla/manager/dispatcher"
	"github.com/flotilla-org/flotilla/manager/state"
)

type collectorFunc func(chan<- prometheus.Metric)

func (collectorFunc) Describe(chan<- *prometheus.Desc)      {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

func metricNode(id string, st swarm.NodeState, avail swarm.NodeAvailability, role swarm.NodeRole) *state.Node {
	n := &state.Node{Role: role}
	n.ID = id
	n.Status.State = st
	n.Spec.Availability = avail
	return n
}

func metricTask(id, service string, st, desired swarm.TaskState, errMsg string) *state.Task {
	t := &state.Task{}
	t.ID, t.ServiceID = id, service
	t.Status.State, t.Status.Err, t.DesiredState = st, errMsg, desired
	return t
}

func onNode(id string, t *state.Task) *state.Task {
	t.NodeID = id
	return t
}

// The state's figures are counted from the manager's replica when
// scraped: nodes by state, tasks by state, services' desired and running
// tasks, tasks no node can take by reason, and objects by kind.
func TestCollectState(t *testing.T) {
	st := state.NewStore()
	replicas := uint64(3)
	web := &state.Service{}
	web.ID, web.Spec.Name = "svc-web", "web"
	web.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &replicas}
	agent := &state.Service{}
	agent.ID, agent.Spec.Name = "svc-agent", "agent"
	agent.Spec.Mode.Global = &swarm.GlobalService{}
	objs := []struct {
		table string
		obj   state.Object
	}{
		{state.TableNodes, metricNode("n1", swarm.NodeStateReady, swarm.NodeAvailabilityActive, swarm.NodeRoleManager)},
		{state.TableNodes, metricNode("n2", swarm.NodeStateReady, swarm.NodeAvailabilityActive, swarm.NodeRoleWorker)},
		{state.TableNodes, metricNode("n3", swarm.NodeStateDown, swarm.NodeAvailabilityActive, swarm.NodeRoleWorker)},
		{state.TableServices, web},
		{state.TableServices, agent},
		{state.TableTasks, metricTask("t1", "svc-web", swarm.TaskStateRunning, swarm.TaskStateRunning, "")},
		{state.TableTasks, metricTask("t2", "svc-web", swarm.TaskStateRunning, swarm.TaskStateRunning, "")},
		{state.TableTasks, metricTask("t3", "svc-web", swarm.TaskStatePending, swarm.TaskStateRunning, "no suitable node (2 nodes not available for new tasks; 1 node not ready)")},
		{state.TableTasks, metricTask("t4", "svc-web", swarm.TaskStateFailed, swarm.TaskStateShutdown, "")},
		{state.TableTasks, metricTask("t5", "svc-agent", swarm.TaskStateRunning, swarm.TaskStateRunning, "")},
		// On a Down node: nobody knows it runs.
		{state.TableTasks, onNode("n3", metricTask("t6", "svc-web", swarm.TaskStateRunning, swarm.TaskStateRunning, ""))},
	}
	var ops []state.Op
	for _, o := range objs {
		ops = append(ops, state.NewOp(o.table, state.ActionCreate, o.obj, 0))
	}
	if err := st.Apply(1, state.Batch{Ops: ops, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	m := &Manager{store: st, disp: dispatcher.New(st, nil, slog.Default())}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectorFunc(m.collectState))

	want := `
# HELP flotilla_nodes Nodes of the cluster by state, availability and role.
# TYPE flotilla_nodes gauge
flotilla_nodes{availability="active",role="manager",state="ready"} 1
flotilla_nodes{availability="active",role="worker",state="down"} 1
flotilla_nodes{availability="active",role="worker",state="ready"} 1
# HELP flotilla_tasks Tasks of the cluster by observed state and desired state.
# TYPE flotilla_tasks gauge
flotilla_tasks{desired_state="running",state="pending"} 1
flotilla_tasks{desired_state="running",state="running"} 4
flotilla_tasks{desired_state="shutdown",state="failed"} 1
# HELP flotilla_service_tasks_desired Tasks a service wants running: its replicas (replicated), or its tasks meant to run on Ready nodes (global).
# TYPE flotilla_service_tasks_desired gauge
flotilla_service_tasks_desired{service="agent"} 1
flotilla_service_tasks_desired{service="web"} 3
# HELP flotilla_service_tasks_running A service's tasks that are running on Ready nodes (as REPLICAS in 'service ls').
# TYPE flotilla_service_tasks_running gauge
flotilla_service_tasks_running{service="agent"} 1
flotilla_service_tasks_running{service="web"} 2
# HELP flotilla_scheduler_unplaceable_tasks Tasks waiting for a node that no node can take, by the reason that turned away the most nodes.
# TYPE flotilla_scheduler_unplaceable_tasks gauge
flotilla_scheduler_unplaceable_tasks{reason="nodes_unavailable"} 1
# HELP flotilla_store_objects Objects in this manager's replica of the cluster state, by kind.
# TYPE flotilla_store_objects gauge
flotilla_store_objects{kind="configs"} 0
flotilla_store_objects{kind="networks"} 0
flotilla_store_objects{kind="nodes"} 3
flotilla_store_objects{kind="secrets"} 0
flotilla_store_objects{kind="services"} 2
flotilla_store_objects{kind="tasks"} 6
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
