package webui

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// fakeSource is a cluster of fixed state; err, when set, is what every
// cluster read fails with.
type fakeSource struct {
	nodes    []swarm.Node
	services []swarm.Service
	tasks    []swarm.Task
	current  []swarm.Task // the tasks on their service's current spec
	events   []events.Message
	err      error
	managers []swarm.Peer
	// eventReads counts the events handed out by SwarmEvents.
	eventReads int
}

func (f *fakeSource) SwarmInfo(context.Context) swarm.Info {
	return swarm.Info{RemoteManagers: f.managers}
}
func (f *fakeSource) NodeName() string { return "m1" }
func (f *fakeSource) Nodes(context.Context) ([]swarm.Node, error) {
	return f.nodes, f.err
}
func (f *fakeSource) Services(context.Context, bool) ([]swarm.Service, error) {
	return f.services, f.err
}
func (f *fakeSource) Tasks(_ context.Context, upToDateOnly bool) ([]swarm.Task, error) {
	if upToDateOnly {
		return f.current, f.err
	}
	return f.tasks, f.err
}
func (f *fakeSource) SwarmEvents(_ context.Context, after int64) ([]events.Message, <-chan struct{}, error) {
	var out []events.Message
	for _, ev := range f.events {
		if ev.TimeNano > after {
			out = append(out, ev)
		}
	}
	f.eventReads += len(out)
	return out, nil, f.err
}
func (f *fakeSource) SwarmEventClock(context.Context) (int64, error) {
	if len(f.events) == 0 {
		return 0, f.err
	}
	return f.events[len(f.events)-1].TimeNano, f.err
}

func node(id, host string, role swarm.NodeRole, state swarm.NodeState, ms *swarm.ManagerStatus) swarm.Node {
	return swarm.Node{
		ID:            id,
		Spec:          swarm.NodeSpec{Role: role, Availability: swarm.NodeAvailabilityActive},
		Description:   swarm.NodeDescription{Hostname: host},
		Status:        swarm.NodeStatus{State: state, Addr: "127.0.0.1"},
		ManagerStatus: ms,
	}
}

func cluster() *fakeSource {
	replicas := uint64(3)
	return &fakeSource{
		nodes: []swarm.Node{
			node("w1id", "w1", swarm.NodeRoleWorker, swarm.NodeStateDown, nil),
			node("m1id", "m1", swarm.NodeRoleManager, swarm.NodeStateReady, &swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable}),
			node("m2id", "m2", swarm.NodeRoleManager, swarm.NodeStateReady, &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable}),
			node("m3id", "m3", swarm.NodeRoleManager, swarm.NodeStateReady, &swarm.ManagerStatus{Reachability: swarm.ReachabilityUnreachable}),
		},
		services: []swarm.Service{{
			ID: "svc1",
			Spec: swarm.ServiceSpec{
				Annotations:  swarm.Annotations{Name: "web", Labels: map[string]string{"note": "<script>alert(1)</script>"}},
				Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
				TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "/bin/sleep"}},
			},
			ServiceStatus: &swarm.ServiceStatus{RunningTasks: 2, DesiredTasks: 3},
			UpdateStatus:  &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, Message: "update in progress"},
		}},
		tasks: []swarm.Task{
			{ServiceID: "svc1", Slot: 1, NodeID: "m2id", DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}},
			{ServiceID: "svc1", Slot: 2, NodeID: "m2id", DesiredState: swarm.TaskStateShutdown, Status: swarm.TaskStatus{State: swarm.TaskStateShutdown}},
		},
		current: []swarm.Task{
			{ServiceID: "svc1", Slot: 1, NodeID: "m2id", DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}},
		},
		events: []events.Message{{Type: events.ServiceEventType, Action: events.ActionCreate, Actor: events.Actor{ID: "svc1", Attributes: map[string]string{"name": "web"}}, TimeNano: 100}},
	}
}

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestPageShowsTheCluster(t *testing.T) {
	h := New(cluster())
	res, body := get(t, h, http.MethodGet, "/ui/")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %s %s", res.Status, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<tr data-node="m1"`, `<tr data-node="w1" class="down"`, `<td class="state">down</td>`,
		`<td id="leader">m1</td>`, // leader by hostname
		`ok (2 of 3 managers reachable, 2 needed)`,
		`<tr data-service="web">`, `2/3`, `updating: 1 of 3 tasks on the new spec`, // update progress
		`web.1</span> running`, // the shut-down task of slot 2 is history
		`<td>service</td><td>create</td><td>web</td>`,
		`src="static/live.js"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "web.2") {
		t.Errorf("page lists a task that is shut down:\n%s", body)
	}
}

func TestPageEscapesWhatUsersWrote(t *testing.T) {
	_, body := get(t, New(cluster()), http.MethodGet, "/ui/live")
	if strings.Contains(body, "<script>alert") {
		t.Fatalf("a service label reached the page unescaped:\n%s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the label is not shown escaped:\n%s", body)
	}
}

func TestQuorumLost(t *testing.T) {
	src := cluster()
	src.nodes[2].ManagerStatus.Reachability = swarm.ReachabilityUnreachable
	_, body := get(t, New(src), http.MethodGet, "/ui/live")
	if !strings.Contains(body, `class="bad">lost (1 of 3 managers reachable, 2 needed)`) {
		t.Errorf("quorum not shown lost:\n%s", body)
	}
}

func TestReadOnly(t *testing.T) {
	h := New(cluster())
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		res, body := get(t, h, m, "/ui/")
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /ui/: %s, Allow %q; want 405 with Allow: GET, HEAD", m, res.Status, res.Header.Get("Allow"))
		}
		if !strings.Contains(body, "read-only") {
			t.Errorf("%s /ui/ does not say the UI is read-only: %q", m, body)
		}
	}
}

func TestWorkerSaysManagersServeTheUI(t *testing.T) {
	src := &fakeSource{err: errdefs.ErrNotManager, managers: []swarm.Peer{{NodeID: "m1id", Addr: "10.0.0.1:2377"}}}
	res, body := get(t, New(src), http.MethodGet, "/ui/")
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /ui/ on a worker: %s, want 503", res.Status)
	}
	for _, want := range []string{"served by managers", "10.0.0.1:2377"} {
		if !strings.Contains(body, want) {
			t.Errorf("worker page lacks %q:\n%s", want, body)
		}
	}
}

func TestStaticAndRedirects(t *testing.T) {
	h := New(cluster())
	if res, body := get(t, h, http.MethodGet, "/ui/static/live.js"); res.StatusCode != http.StatusOK || !strings.Contains(body, "setTimeout") {
		t.Errorf("GET /ui/static/live.js: %s", res.Status)
	}
	if res, _ := get(t, h, http.MethodGet, "/ui"); res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %s to %q, want a redirect to /ui/", res.Status, res.Header.Get("Location"))
	}
	if res, _ := get(t, h, http.MethodGet, "/ui/nothing"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nothing: %s, want 404", res.Status)
	}
}

// The page lists the newest events first, a bounded number, and each
// refresh reads only the events recorded since the last.
func TestRecentEvents(t *testing.T) {
	src := cluster()
	src.events = nil
	for i := range 50 {
		src.events = append(src.events, events.Message{Type: events.NodeEventType, Action: events.ActionUpdate,
			Actor: events.Actor{ID: fmt.Sprint("n", i), Attributes: map[string]string{"name": fmt.Sprint("node-", i)}}, TimeNano: int64(i + 1)})
	}
	h := New(src)
	_, body := get(t, h, http.MethodGet, "/ui/live")
	if got := strings.Count(body, "<td>node</td>"); got != recentEvents {
		t.Errorf("%d events listed, want %d", got, recentEvents)
	}
	if !strings.Contains(body, "node-49") || strings.Contains(body, "node-29<") {
		t.Errorf("not the newest %d events:\n%s", recentEvents, body)
	}
	if strings.Index(body, "node-49") > strings.Index(body, "node-48") {
		t.Errorf("events not newest first")
	}
	src.eventReads = 0
	src.events = append(src.events, events.Message{Type: events.ServiceEventType, Action: events.ActionRemove, Actor: events.Actor{ID: "s"}, TimeNano: 51})
	_, body = get(t, h, http.MethodGet, "/ui/live")
	if src.eventReads != 1 {
		t.Errorf("a refresh read %d events, want only the 1 new", src.eventReads)
	}
	if !strings.Contains(body, "<td>service</td><td>remove</td>") {
		t.Errorf("new event not listed:\n%s", body)
	}
}

// A node with many tasks lists the first of them and counts the rest.
func TestManyTasksOnANode(t *testing.T) {
	src := cluster()
	src.tasks = nil
	for i := range tasksShown + 7 {
		src.tasks = append(src.tasks, swarm.Task{ServiceID: "svc1", Slot: i + 1, NodeID: "m1id", DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{State: swarm.TaskStateRunning}})
	}
	_, body := get(t, New(src), http.MethodGet, "/ui/live")
	if got := strings.Count(body, `<span class="task">`); got != tasksShown {
		t.Errorf("%d tasks listed, want %d", got, tasksShown)
	}
	if !strings.Contains(body, "and 7 more") {
		t.Errorf("the tasks not listed are not counted:\n%s", body)
	}
}
