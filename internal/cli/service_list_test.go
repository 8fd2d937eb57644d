package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

const svcCacheID = "ca0123456789abcdefghijklm"

// listServices is three services in no particular order, with the
// running/desired counts GET /services?status=true carries.
func listServices() []swarm.Service {
	web := testService(svcWebID, "web", "nginx:1.27@sha256:0123456789abcdef", 3)
	web.ServiceStatus = &swarm.ServiceStatus{RunningTasks: 2, DesiredTasks: 3}
	web.Endpoint.Ports = []swarm.PortConfig{
		{Protocol: network.TCP, TargetPort: 81, PublishedPort: 8081, PublishMode: swarm.PortConfigPublishModeIngress},
		{Protocol: network.TCP, TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress},
		{Protocol: network.UDP, TargetPort: 53, PublishedPort: 53, PublishMode: swarm.PortConfigPublishModeIngress},
		{Protocol: network.TCP, TargetPort: 9000, PublishedPort: 9000, PublishMode: swarm.PortConfigPublishModeHost},
	}
	agent := testService(svcDBID, "agent", "/usr/local/bin/agent", -1)
	agent.ServiceStatus = &swarm.ServiceStatus{RunningTasks: 5, DesiredTasks: 5}
	cache := testService(svcCacheID, "cache-10", "redis:7", 2)
	cache.Spec.TaskTemplate.Placement = &swarm.Placement{MaxReplicas: 1}
	cache.ServiceStatus = &swarm.ServiceStatus{RunningTasks: 0, DesiredTasks: 2}
	return []swarm.Service{web, cache, agent}
}

func TestServiceLsTable(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /services", http.StatusOK, listServices())
	r := mustRun(t, f.host, "service", "ls")
	want := "" +
		"ID             NAME       MODE         REPLICAS               IMAGE                  PORTS\n" +
		"db0123456789   agent      global       5/5                    /usr/local/bin/agent   \n" +
		"ca0123456789   cache-10   replicated   0/2 (max 1 per node)   redis:7                \n" +
		"wxyz1234abcd   web        replicated   2/3                    nginx:1.27             *:8080-8081->80-81/tcp, *:53->53/udp\n"
	if r.stdout != want {
		t.Errorf("service ls printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	reqs := f.only("GET", "/services")
	if len(reqs) != 1 || reqs[0].Query.Get("status") != "true" {
		t.Errorf("service ls should ask for status: %v", reqs)
	}
}

func TestServiceLsQuietFormatAndFilters(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /services", http.StatusOK, listServices())

	r := mustRun(t, f.host, "service", "ls", "-q")
	if want := "db0123456789\nca0123456789\nwxyz1234abcd\n"; r.stdout != want {
		t.Errorf("ls -q printed %q, want %q", r.stdout, want)
	}
	if q := f.only("GET", "/services")[0].Query; q.Has("status") {
		t.Errorf("ls -q asked for status: %v", q)
	}

	r = mustRun(t, f.host, "service", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}")
	if want := "agent global 5/5\ncache-10 replicated 0/2 (max 1 per node)\nweb replicated 2/3\n"; r.stdout != want {
		t.Errorf("ls --format printed %q", r.stdout)
	}
	r = mustRun(t, f.host, "service", "ls", "--format", "table {{.Name}}\t{{.Image}}")
	if want := "NAME       IMAGE\nagent      /usr/local/bin/agent\ncache-10   redis:7\nweb        nginx:1.27\n"; r.stdout != want {
		t.Errorf("ls --format table printed:\n%s", r.stdout)
	}
	r = mustRun(t, f.host, "service", "ls", "--format", "json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var first map[string]string
	if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &first) != nil ||
		first["ID"] != "db0123456789" || first["Name"] != "agent" || first["Replicas"] != "5/5" || first["Mode"] != "global" {
		t.Errorf("ls --format json printed:\n%s", r.stdout)
	}

	mustRun(t, f.host, "service", "ls", "--filter", "mode=global", "-f", "label=tier=front", "--filter", "name=we")
	reqs := f.only("GET", "/services")
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(reqs[len(reqs)-1].Query.Get("filters")), &filters); err != nil {
		t.Fatal(err)
	}
	if !filters["mode"]["global"] || !filters["label"]["tier=front"] || !filters["name"]["we"] || len(filters) != 3 {
		t.Errorf("filters sent: %v", filters)
	}

	if r := run(t, f.host, "service", "ls", "--filter", "bogus"); r.err == nil || !strings.Contains(r.stderr, `bad format of filter "bogus"`) {
		t.Errorf("bad filter: err=%v stderr=%q", r.err, r.stderr)
	}
}

func TestServiceLsCountsTasksWhenTheDaemonSendsNoStatus(t *testing.T) {
	svc := testService(svcWebID, "web", "nginx:latest", 3)
	f := newFakeAPI(t)
	f.reply("GET /services", http.StatusOK, []swarm.Service{svc})
	f.reply("GET /nodes", http.StatusOK, progressNodes())
	f.reply("GET /tasks", http.StatusOK, []swarm.Task{
		testTask("t1", svc, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, 0),
		testTask("t2", svc, 2, nodeB, swarm.TaskStateRunning, swarm.TaskStatePreparing, 0),
		testTask("t0", svc, 2, nodeB, swarm.TaskStateShutdown, swarm.TaskStateFailed, 0),
	})
	r := mustRun(t, f.host, "service", "ls", "--format", "{{.Replicas}}")
	if r.stdout != "1/3\n" {
		t.Errorf("replicas = %q, want 1/3", r.stdout)
	}
}

// psAPI serves the web service's tasks, with history.
func psAPI(t *testing.T) *fakeAPI {
	web := testService(svcWebID, "web", "nginx:1.27@sha256:0123456789abcdef", 2)
	agent := testService(svcDBID, "agent", "agent:1", -1)
	f := newFakeAPI(t)
	f.reply("GET /services", http.StatusOK, []swarm.Service{web, agent})
	f.reply("GET /nodes", http.StatusOK, progressNodes())
	f.reply("GET /info", http.StatusOK, managerInfo())
	f.handle("GET /tasks", func(w http.ResponseWriter, _ *http.Request) {
		older := withErr(testTask("task1old00000000000000000", web, 1, nodeB, swarm.TaskStateShutdown, swarm.TaskStateFailed, 3*time.Hour),
			"task: non-zero exit (137): killed by the kernel for using too much memory")
		older.CreatedAt = time.Now().Add(-4 * time.Hour)
		t10 := testTask("task10xxxxxxxxxxxxxxxxxxx", web, 10, nodeC, swarm.TaskStateRunning, swarm.TaskStateStarting, 10*time.Minute)
		t10.Status.PortStatus.Ports = []swarm.PortConfig{{Protocol: network.TCP, TargetPort: 80, PublishedPort: 30080, PublishMode: swarm.PortConfigPublishModeHost}}
		writeJSON(w, http.StatusOK, []swarm.Task{
			t10,
			older,
			testTask("task1new00000000000000000", web, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, 2*time.Hour),
			testTask("taskglobal000000000000000", agent, 0, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, 30*24*time.Hour),
		})
	})
	return f
}

func TestServicePsTable(t *testing.T) {
	f := psAPI(t)
	r := mustRun(t, f.host, "service", "ps", "web", "agent")
	want := "" +
		"ID             NAME                              IMAGE        NODE      DESIRED STATE   CURRENT STATE             ERROR                              PORTS\n" +
		"taskglobal00   agent.nodeaaaaaaaaaaaaaaaaaaaaa   agent:1      node-a    Running         Running 4 weeks ago                                          \n" +
		"task1new0000   web.1                             nginx:1.27   node-a    Running         Running 2 hours ago                                          \n" +
		"task1old0000    \\_ web.1                         nginx:1.27   node-b    Shutdown        Failed 3 hours ago        \"task: non-zero exit (137): ki…\"   \n" +
		"task10xxxxxx   web.10                            nginx:1.27   node-c    Running         Starting 10 minutes ago                                      *:30080->80/tcp\n"
	if r.stdout != want {
		t.Errorf("service ps printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	tasks := f.only("GET", "/tasks")
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(tasks[0].Query.Get("filters")), &filters); err != nil {
		t.Fatal(err)
	}
	if !filters["service"][svcWebID] || !filters["service"][svcDBID] || len(filters) != 1 {
		t.Errorf("task filters = %v", filters)
	}
}

func TestServicePsOptions(t *testing.T) {
	f := psAPI(t)

	r := mustRun(t, f.host, "service", "ps", "-q", "web")
	want := "taskglobal000000000000000\ntask1new00000000000000000\ntask1old00000000000000000\ntask10xxxxxxxxxxxxxxxxxxx\n"
	if r.stdout != want {
		t.Errorf("ps -q printed:\n%s", r.stdout)
	}

	r = mustRun(t, f.host, "service", "ps", "--no-trunc", "--format", "{{.ID}} {{.Name}} {{.Image}} {{.Error}}", "web")
	if !strings.Contains(r.stdout, "task1old00000000000000000 web.1 nginx:1.27@sha256:0123456789abcdef \"task: non-zero exit (137): killed by the kernel for using too much memory\"\n") {
		t.Errorf("ps --no-trunc printed:\n%s", r.stdout)
	}

	r = mustRun(t, f.host, "service", "ps", "--format", "{{.Name}}@{{.Node}} {{.DesiredState}}", "--no-resolve", "web")
	if !strings.Contains(r.stdout, svcWebID+".1@"+nodeA+" Running\n") {
		t.Errorf("ps --no-resolve printed:\n%s", r.stdout)
	}

	r = mustRun(t, f.host, "service", "ps", "--format", "json", "web")
	var row map[string]string
	if err := json.Unmarshal([]byte(strings.Split(r.stdout, "\n")[1]), &row); err != nil ||
		row["Name"] != "web.1" || row["Node"] != "node-a" || row["CurrentState"] != "Running 2 hours ago" {
		t.Errorf("ps --format json printed:\n%s", r.stdout)
	}

	mustRun(t, f.host, "service", "ps", "-f", "desired-state=running", "-f", "node=node-b", "--filter", "node=self", "web")
	tasks := f.only("GET", "/tasks")
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(tasks[len(tasks)-1].Query.Get("filters")), &filters); err != nil {
		t.Fatal(err)
	}
	if !filters["desired-state"]["running"] || !filters["node"][nodeB] || !filters["node"][idM1] || len(filters["node"]) != 2 {
		t.Errorf("filters sent: %v (node names and self should be resolved to IDs)", filters)
	}
}

func TestServicePsUnknownService(t *testing.T) {
	f := psAPI(t)
	r := run(t, f.host, "service", "ps", "web", "ghost")
	if r.err == nil || r.stderr != "no such service: ghost\n" || !strings.Contains(r.stdout, "web.1") {
		t.Errorf("err=%v stdout=%q stderr=%q", r.err, r.stdout, r.stderr)
	}
	listed := len(f.only("GET", "/tasks"))
	r = run(t, f.host, "service", "ps", "ghost", "phantom")
	if r.err == nil || r.stderr != "no such service: ghost\nno such service: phantom\n" || r.stdout != "" {
		t.Errorf("err=%v stdout=%q stderr=%q", r.err, r.stdout, r.stderr)
	}
	if len(f.only("GET", "/tasks")) != listed {
		t.Error("tasks listed though no service matched")
	}
	// An ID prefix works when it is unique.
	r = mustRun(t, f.host, "service", "ps", "-q", "wxyz")
	if !strings.Contains(r.stdout, "task1new00000000000000000") {
		t.Errorf("ps by ID prefix printed:\n%s", r.stdout)
	}
}
