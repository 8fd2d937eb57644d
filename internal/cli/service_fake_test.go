package cli_test

import (
	"encoding/binary"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

const (
	svcWebID = "wxyz1234abcd5678efgh9012i" // service "web"
	svcDBID  = "db0123456789abcdefghijklm" // service "db"
)

// testService is a replicated service (replicas > 0) or a global one
// (replicas < 0) as a daemon would return it.
func testService(id, name, image string, replicas int) swarm.Service {
	s := swarm.Service{ID: id}
	s.Version.Index = 42
	s.CreatedAt = time.Now().Add(-time.Hour)
	s.UpdatedAt = s.CreatedAt
	s.Spec.Name = name
	s.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: image}
	if replicas < 0 {
		s.Spec.Mode.Global = &swarm.GlobalService{}
	} else {
		n := uint64(replicas)
		s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n}
	}
	// Verify convergence quickly.
	s.Spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, Monitor: time.Millisecond}
	return s
}

// testTask is a task of svc in a state reached `ago` ago.
func testTask(id string, svc swarm.Service, slot int, nodeID string, desired, state swarm.TaskState, ago time.Duration) swarm.Task {
	t := swarm.Task{ID: id, ServiceID: svc.ID, Slot: slot, NodeID: nodeID, DesiredState: desired}
	t.CreatedAt = time.Now().Add(-ago)
	t.Spec = svc.Spec.TaskTemplate
	t.Status = swarm.TaskStatus{State: state, Timestamp: time.Now().Add(-ago)}
	return t
}

func withErr(t swarm.Task, err string) swarm.Task {
	t.Status.Err = err
	return t
}

// replySequence makes route answer the replies in turn, the last one
// from then on.
func replySequence(f *fakeAPI, route string, replies ...any) {
	var (
		mu sync.Mutex
		n  int
	)
	f.handle(route, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		i := min(n, len(replies)-1)
		n++
		mu.Unlock()
		writeJSON(w, http.StatusOK, replies[i])
	})
}

// tasksSequence is replySequence for task lists, with the tasks made at
// request time (so their ages are right).
func tasksSequence(f *fakeAPI, polls ...func() []swarm.Task) {
	var (
		mu sync.Mutex
		n  int
	)
	f.handle("GET /tasks", func(w http.ResponseWriter, r *http.Request) {
		// Only the polls of tasks that should run step through the
		// sequence; the progress display's look at ended tasks gets those
		// set with endedTasks.
		if !strings.Contains(r.URL.Query().Get("filters"), `"running"`) {
			f.mu.Lock()
			tasks := f.ended
			f.mu.Unlock()
			if tasks == nil {
				tasks = []swarm.Task{}
			}
			writeJSON(w, http.StatusOK, tasks)
			return
		}
		mu.Lock()
		i := min(n, len(polls)-1)
		n++
		mu.Unlock()
		tasks := polls[i]()
		if tasks == nil {
			tasks = []swarm.Task{}
		}
		writeJSON(w, http.StatusOK, tasks)
	})
}

// endedTasks sets the tasks that are already shut down.
func endedTasks(f *fakeAPI, tasks ...swarm.Task) {
	f.mu.Lock()
	f.ended = tasks
	f.mu.Unlock()
}

func fixed(tasks ...swarm.Task) func() []swarm.Task {
	return func() []swarm.Task { return tasks }
}

// muxFrame is one frame of a multiplexed (stdcopy) stream.
func muxFrame(stream byte, payload string) []byte {
	h := make([]byte, 8, 8+len(payload))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	return append(h, payload...)
}

// noRequests fails the test if the CLI talked to the daemon at all.
func noRequests(t *testing.T, f *fakeAPI, what string) {
	t.Helper()
	if reqs := f.allRequests(); len(reqs) > 0 {
		var routes []string
		for _, r := range reqs {
			routes = append(routes, r.Method+" "+r.Path)
		}
		t.Errorf("%s: sent requests %v, want none", what, routes)
	}
}

func routesOf(f *fakeAPI, method string) []string {
	var out []string
	for _, r := range f.requests() {
		if r.Method == method {
			out = append(out, r.Path)
		}
	}
	return slices.Compact(out)
}
