package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

const (
	nodeA = "nodeaaaaaaaaaaaaaaaaaaaaa"
	nodeB = "nodebbbbbbbbbbbbbbbbbbbbb"
	nodeC = "nodeccccccccccccccccccccc"
)

func progressNodes() []swarm.Node {
	return []swarm.Node{
		node(nodeA, "node-a", swarm.NodeRoleManager, swarm.NodeStateReady, swarm.NodeAvailabilityActive, "1", nil),
		node(nodeB, "node-b", swarm.NodeRoleWorker, swarm.NodeStateReady, swarm.NodeAvailabilityActive, "1", nil),
		node(nodeC, "node-c", swarm.NodeRoleWorker, swarm.NodeStateReady, swarm.NodeAvailabilityActive, "1", nil),
	}
}

// newProgressAPI is a fake daemon where service create answers with the
// web service, whose tasks move as the test scripts them.
func newProgressAPI(t *testing.T, svc swarm.Service) *fakeAPI {
	f := newFakeAPI(t)
	f.reply("POST /services/create", http.StatusCreated, swarm.ServiceCreateResponse{ID: svc.ID})
	f.reply("GET /services/"+svc.ID, http.StatusOK, svc)
	f.reply("GET /nodes", http.StatusOK, progressNodes())
	return f
}

func TestServiceCreateShowsProgressUntilConverged(t *testing.T) {
	svc := testService(svcWebID, "web", "nginx:latest", 3)
	f := newProgressAPI(t, svc)
	task := func(id string, slot int, state swarm.TaskState) swarm.Task {
		return testTask(id, svc, slot, nodeA, swarm.TaskStateRunning, state, time.Second)
	}
	tasksSequence(f,
		fixed(),
		fixed(task("t1", 1, swarm.TaskStatePending), task("t2", 2, swarm.TaskStateAssigned), task("t3", 3, swarm.TaskStatePending)),
		fixed(task("t1", 1, swarm.TaskStateRunning), task("t2", 2, swarm.TaskStatePreparing), task("t3", 3, swarm.TaskStateStarting)),
		fixed(task("t1", 1, swarm.TaskStateRunning), task("t2", 2, swarm.TaskStateRunning), task("t3", 3, swarm.TaskStateRunning)),
	)

	r := mustRun(t, f.host, "service", "create", "--name", "web", "--replicas", "3", "nginx")
	want := svcWebID + "\n" +
		"overall progress: 0 out of 3 tasks\n" +
		"1/3: pending\n" +
		"2/3: assigned\n" +
		"3/3: pending\n" +
		"overall progress: 1 out of 3 tasks\n" +
		"1/3: running\n" +
		"2/3: preparing\n" +
		"3/3: starting\n" +
		"overall progress: 3 out of 3 tasks\n" +
		"2/3: running\n" +
		"3/3: running\n" +
		"verify: Waiting 1 second to verify that tasks are stable...\n" +
		"verify: Service converged\n"
	if r.stdout != want {
		t.Errorf("create printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	if r.stderr != "" {
		t.Errorf("stderr: %q", r.stderr)
	}
	// Polls ask for the service's tasks that should be running.
	polls := f.only("GET", "/tasks")
	if len(polls) < 4 {
		t.Fatalf("only %d task polls", len(polls))
	}
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(polls[0].Query.Get("filters")), &filters); err != nil {
		t.Fatal(err)
	}
	if len(filters) != 2 || !filters["service"][svcWebID] || !filters["desired-state"]["running"] {
		t.Errorf("task poll filters = %v", filters)
	}
	if len(f.only("GET", "/services/"+svcWebID)) < 4 {
		t.Errorf("the service is polled too: %v", f.routesCalled())
	}
	// Ended tasks are looked up only while something moves, not on the
	// polls that wait out the monitor with every task running.
	ended := 0
	for _, q := range polls {
		if !strings.Contains(q.Query.Get("filters"), `"running"`) {
			ended++
		}
	}
	if running := len(polls) - ended; ended >= running {
		t.Errorf("ended tasks listed on %d of %d polls", ended, running)
	}
}

func TestServiceCreateQuietWaitsSilently(t *testing.T) {
	svc := testService(svcWebID, "web", "nginx:latest", 1)
	f := newProgressAPI(t, svc)
	tasksSequence(f, fixed(testTask("t1", svc, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, time.Second)))
	r := mustRun(t, f.host, "service", "create", "-q", "nginx")
	if r.stdout != svcWebID+"\n" {
		t.Errorf("create -q printed %q", r.stdout)
	}
	if len(f.only("GET", "/tasks")) == 0 {
		t.Error("create -q did not wait for convergence")
	}
}

func TestServiceCreateFailsWhenTasksAreRejected(t *testing.T) {
	svc := testService(svcWebID, "web", "nope:latest", 1)
	f := newProgressAPI(t, svc)
	const noImage = "No such image: nope:latest"
	task := func(id string, state swarm.TaskState) swarm.Task {
		return testTask(id, svc, 1, nodeB, swarm.TaskStateRunning, state, 0)
	}
	rejected := func(id string, desired swarm.TaskState) swarm.Task {
		t := withErr(task(id, swarm.TaskStateRejected), noImage)
		t.DesiredState = desired
		return t
	}
	// The second rejection is never listed: the daemon replaced the task
	// between two polls, and only inspecting it tells why it left.
	f.reply("GET /tasks/t2", http.StatusOK, rejected("t2", swarm.TaskStateShutdown))
	tasksSequence(f,
		fixed(task("t1", swarm.TaskStatePending)),
		fixed(rejected("t1", swarm.TaskStateRunning)),
		fixed(), // restart delay: the next task is not running yet
		fixed(task("t2", swarm.TaskStatePending)),
		fixed(),
		fixed(task("t3", swarm.TaskStateAssigned)),
		fixed(rejected("t3", swarm.TaskStateRunning)),
	)

	r := run(t, f.host, "service", "create", "--name", "web", "nope")
	if r.err == nil {
		t.Fatalf("create of a service that cannot run succeeded:\n%s", r.stdout)
	}
	want := svcWebID + "\n" +
		"overall progress: 0 out of 1 tasks\n" +
		"1/1: pending\n" +
		"1/1: " + noImage + "\n" +
		"1/1: pending\n" +
		"1/1: " + noImage + "\n" +
		"1/1: assigned\n" +
		"1/1: " + noImage + "\n"
	if r.stdout != want {
		t.Errorf("create printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	if wantErr := "service web cannot converge: task web.1 was rejected 3 times: " + noImage + "\n"; r.stderr != wantErr {
		t.Errorf("stderr = %q, want %q", r.stderr, wantErr)
	}
	if got := len(f.only("GET", "/tasks/t2")); got != 1 {
		t.Errorf("the task that left was inspected %d times", got)
	}
}

// A task rejected before the first poll is never listed among the tasks
// that should run; it still counts, so the display gives up after the
// third rejection, not the fourth.
func TestServiceCreateCountsARejectionBeforeTheFirstPoll(t *testing.T) {
	svc := testService(svcWebID, "web", "nope:latest", 1)
	f := newProgressAPI(t, svc)
	const noImage = "No such image: nope:latest"
	rejected := func(id string, desired swarm.TaskState) swarm.Task {
		t := withErr(testTask(id, svc, 1, nodeB, desired, swarm.TaskStateRejected, 0), noImage)
		return t
	}
	endedTasks(f, rejected("t1", swarm.TaskStateShutdown))
	tasksSequence(f,
		fixed(),
		fixed(testTask("t2", svc, 1, nodeB, swarm.TaskStateRunning, swarm.TaskStatePending, 0)),
		fixed(rejected("t2", swarm.TaskStateRunning)),
		fixed(),
		fixed(testTask("t3", svc, 1, nodeB, swarm.TaskStateRunning, swarm.TaskStatePending, 0)),
		fixed(rejected("t3", swarm.TaskStateRunning)),
		fixed(),
		fixed(testTask("t4", svc, 1, nodeB, swarm.TaskStateRunning, swarm.TaskStatePending, 0)),
		fixed(rejected("t4", swarm.TaskStateRunning)),
	)
	r := run(t, f.host, "service", "create", "--name", "web", "nope")
	if wantErr := "service web cannot converge: task web.1 was rejected 3 times: " + noImage + "\n"; r.err == nil || r.stderr != wantErr {
		t.Fatalf("err=%v stderr=%q, want %q\n%s", r.err, r.stderr, wantErr, r.stdout)
	}
	polls := 0
	for _, q := range f.only("GET", "/tasks") {
		if strings.Contains(q.Query.Get("filters"), `"running"`) {
			polls++
		}
	}
	if polls > 6 {
		t.Errorf("the display looked at the tasks %d times: it waited for a fourth rejection\n%s", polls, r.stdout)
	}
}

func TestServiceCreateFailsAtOnceWhenTheRestartPolicySaysNone(t *testing.T) {
	svc := testService(svcWebID, "web", "busybox:latest", 2)
	svc.Spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	f := newProgressAPI(t, svc)
	failed := withErr(testTask("t2", svc, 2, nodeC, swarm.TaskStateShutdown, swarm.TaskStateFailed, 0), "task: non-zero exit (1)")
	f.reply("GET /tasks/t2", http.StatusOK, failed)
	tasksSequence(f,
		fixed(testTask("t1", svc, 1, nodeB, swarm.TaskStateRunning, swarm.TaskStateRunning, 0), testTask("t2", svc, 2, nodeC, swarm.TaskStateRunning, swarm.TaskStateStarting, 0)),
		fixed(testTask("t1", svc, 1, nodeB, swarm.TaskStateRunning, swarm.TaskStateRunning, 0)),
	)
	r := run(t, f.host, "service", "create", "--restart-condition", "none", "busybox", "false")
	want := "service web cannot converge: task web.2 failed and its restart policy (condition none) does not restart it: task: non-zero exit (1)\n"
	if r.err == nil || r.stderr != want {
		t.Errorf("err=%v stderr=%q, want %q", r.err, r.stderr, want)
	}
	if !strings.Contains(r.stdout, "2/2: task: non-zero exit (1)\n") {
		t.Errorf("the failure is not shown on its slot:\n%s", r.stdout)
	}
}

func TestServiceCreateGivesUpWithoutProgress(t *testing.T) {
	svc := testService(svcWebID, "web", "nginx:latest", 1)
	f := newProgressAPI(t, svc)
	const noNode = "no suitable node (scheduling constraints not satisfied on 3 nodes)"
	tasksSequence(f, fixed(withErr(testTask("t1", svc, 1, "", swarm.TaskStateRunning, swarm.TaskStatePending, 0), noNode)))
	r := run(t, f.host, "service", "create", "--constraint", "node.labels.gpu==yes", "--timeout", "30ms", "nginx")
	if r.err == nil {
		t.Fatal("create that cannot be scheduled succeeded")
	}
	if !strings.HasPrefix(r.stderr, "service web did not converge: no progress for ") ||
		!strings.Contains(r.stderr, "(0 out of 1 tasks running); task t1: "+noNode+"\nSee 'flotilla service ps web'.\n") {
		t.Errorf("stderr = %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "1/1: "+noNode+"\n") {
		t.Errorf("the scheduling error is not shown:\n%s", r.stdout)
	}
}

func TestServiceCreateGlobalProgress(t *testing.T) {
	svc := testService(svcWebID, "agent", "agent:1", -1)
	f := newProgressAPI(t, svc)
	task := func(id, nodeID string, state swarm.TaskState) swarm.Task {
		return testTask(id, svc, 0, nodeID, swarm.TaskStateRunning, state, 0)
	}
	tasksSequence(f,
		fixed(),
		fixed(task("t1", nodeB, swarm.TaskStatePreparing), task("t2", nodeA, swarm.TaskStateRunning)),
		fixed(task("t1", nodeB, swarm.TaskStateRunning), task("t2", nodeA, swarm.TaskStateRunning)),
	)
	r := mustRun(t, f.host, "service", "create", "--mode", "global", "agent:1")
	want := svcWebID + "\n" +
		"overall progress: waiting for new tasks\n" +
		"overall progress: 1 out of 2 tasks\n" +
		"node-a: running\n" +
		"node-b: preparing\n" +
		"overall progress: 2 out of 2 tasks\n" +
		"node-b: running\n" +
		"verify: Waiting 1 second to verify that tasks are stable...\n" +
		"verify: Service converged\n"
	if r.stdout != want {
		t.Errorf("create printed:\n%s\nwant:\n%s", r.stdout, want)
	}
}

func TestServiceProgressIgnoresTasksOnDownNodes(t *testing.T) {
	svc := testService(svcWebID, "web", "nginx:latest", 2)
	f := newProgressAPI(t, svc)
	nodes := progressNodes()
	nodes[2].Status.State = swarm.NodeStateDown
	f.reply("GET /nodes", http.StatusOK, nodes)
	task := func(id string, slot int, nodeID string) swarm.Task {
		return testTask(id, svc, slot, nodeID, swarm.TaskStateRunning, swarm.TaskStateRunning, 0)
	}
	tasksSequence(f,
		fixed(task("t1", 1, nodeA), task("t2", 2, nodeC)),
		fixed(task("t1", 1, nodeA), task("t2", 2, nodeC), task("t3", 2, nodeB)),
	)
	r := mustRun(t, f.host, "service", "create", "--replicas", "2", "nginx")
	if !strings.Contains(r.stdout, "overall progress: 1 out of 2 tasks\n") || !strings.Contains(r.stdout, "overall progress: 2 out of 2 tasks\n") {
		t.Errorf("a task on a down node counted as running:\n%s", r.stdout)
	}
}

func TestServiceUpdateProgressCountsOnlyUpdatedTasks(t *testing.T) {
	old := testService(svcWebID, "web", "app:1", 2)
	updated := old
	updated.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "app:2"}
	updated.Version.Index = 43
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, old)
	f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
	f.reply("GET /nodes", http.StatusOK, progressNodes())
	updating := updated
	updating.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, Message: "update in progress"}
	completed := updated
	completed.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, Message: "update completed"}
	replySequence(f, "GET /services/"+svcWebID, updating, updating, updating, completed)
	oldTask := func(id string, slot int) swarm.Task {
		return testTask(id, old, slot, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, time.Hour)
	}
	newTask := func(id string, slot int, state swarm.TaskState) swarm.Task {
		return testTask(id, updated, slot, nodeB, swarm.TaskStateRunning, state, 0)
	}
	tasksSequence(f,
		fixed(oldTask("o1", 1), oldTask("o2", 2)),
		fixed(newTask("n1", 1, swarm.TaskStateRunning), oldTask("o2", 2)),
		fixed(newTask("n1", 1, swarm.TaskStateRunning), newTask("n2", 2, swarm.TaskStateStarting)),
		fixed(newTask("n1", 1, swarm.TaskStateRunning), newTask("n2", 2, swarm.TaskStateRunning)),
	)
	f.reply("GET /tasks/o1", http.StatusOK, testTask("o1", old, 1, nodeA, swarm.TaskStateShutdown, swarm.TaskStateShutdown, 0))
	f.reply("GET /tasks/o2", http.StatusOK, testTask("o2", old, 2, nodeA, swarm.TaskStateShutdown, swarm.TaskStateShutdown, 0))

	r := mustRun(t, f.host, "service", "update", "--image", "app:2", "web")
	want := "web\n" +
		"overall progress: 0 out of 2 tasks\n" +
		"overall progress: 1 out of 2 tasks\n" +
		"1/2: running\n" +
		"2/2: starting\n" +
		"overall progress: 2 out of 2 tasks\n" +
		"2/2: running\n" +
		"verify: Waiting 1 second to verify that tasks are stable...\n" +
		"verify: Service converged\n"
	if r.stdout != want {
		t.Errorf("update printed:\n%s\nwant:\n%s", r.stdout, want)
	}
}

func TestServiceUpdateFailsWhenTheDaemonPausesOrRollsBack(t *testing.T) {
	for _, tc := range []struct {
		status  swarm.UpdateStatus
		wantErr string
		wantOut string
	}{{
		status:  swarm.UpdateStatus{State: swarm.UpdateStatePaused, Message: "update paused due to failure or early termination of task t9"},
		wantErr: "service web: update paused: update paused due to failure or early termination of task t9\n",
	}, {
		status:  swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, Message: "rollback completed"},
		wantErr: "service web: update failed and was rolled back: rollback completed\n",
		wantOut: "rollback: rollback completed\n",
	}} {
		svc := testService(svcWebID, "web", "app:1", 1)
		f := newFakeAPI(t)
		f.reply("GET /services/web", http.StatusOK, svc)
		f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
		f.reply("GET /nodes", http.StatusOK, progressNodes())
		updating, ended := svc, svc
		updating.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}
		ended.UpdateStatus = &tc.status
		replySequence(f, "GET /services/"+svcWebID, updating, ended)
		tasksSequence(f, fixed(testTask("t1", svc, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateStarting, 0)))

		r := run(t, f.host, "service", "update", "--env-add", "X=1", "web")
		if r.err == nil || r.stderr != tc.wantErr {
			t.Errorf("%s: err=%v stderr=%q, want %q", tc.status.State, r.err, r.stderr, tc.wantErr)
		}
		if !strings.HasSuffix(r.stdout, tc.wantOut) {
			t.Errorf("%s: stdout:\n%s", tc.status.State, r.stdout)
		}
	}
}

func TestServiceRollbackShowsRollbackProgress(t *testing.T) {
	svc := testService(svcWebID, "web", "app:2", 1)
	svc.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStatePaused, Message: "update paused"}
	prev := svc.Spec
	prev.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "app:1"}
	svc.PreviousSpec = &prev
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, svc)
	f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
	f.reply("GET /nodes", http.StatusOK, progressNodes())
	rolledBack := svc
	rolledBack.Spec, rolledBack.PreviousSpec = prev, nil
	started, done := rolledBack, rolledBack
	started.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackStarted, Message: "manually requested rollback"}
	done.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, Message: "rollback completed"}
	// The first poll still sees the stale paused status: it is ignored.
	stale := rolledBack
	stale.UpdateStatus = svc.UpdateStatus
	replySequence(f, "GET /services/"+svcWebID, stale, started, done)
	tasksSequence(f,
		fixed(testTask("t1", svc, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, time.Minute)),
		fixed(testTask("t2", rolledBack, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateStarting, 0)),
		fixed(testTask("t2", rolledBack, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, 0)),
	)
	f.reply("GET /tasks/t1", http.StatusOK, testTask("t1", svc, 1, nodeA, swarm.TaskStateShutdown, swarm.TaskStateShutdown, 0))

	r := mustRun(t, f.host, "service", "rollback", "web")
	want := "web\n" +
		"overall progress: 0 out of 1 tasks\n" +
		"overall progress: rolling back update: 0 out of 1 tasks\n" +
		"1/1: starting\n" +
		"rollback: manually requested rollback\n" +
		"overall progress: rolling back update: 1 out of 1 tasks\n" +
		"1/1: running\n" +
		"verify: Waiting 1 second to verify that tasks are stable...\n" +
		"verify: Service converged\n"
	if r.stdout != want {
		t.Errorf("rollback printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	posts := f.only("POST", "/services/"+svcWebID+"/update")
	if len(posts) != 1 {
		t.Fatalf("requests: %v", f.routesCalled())
	}
	if q := posts[0].Query; q.Get("rollback") != "previous" || q.Get("version") != "42" {
		t.Errorf("rollback query = %v", q)
	}
	if got := decodeBody[swarm.ServiceSpec](t, posts[0]); got.TaskTemplate.ContainerSpec.Image != "app:2" {
		t.Errorf("rollback should send the current spec, as docker does; sent image %q", got.TaskTemplate.ContainerSpec.Image)
	}
}
