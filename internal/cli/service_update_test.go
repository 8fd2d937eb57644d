package cli_test

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// updatedSpec returns the one update sent for svc and checks it carries
// the version read.
func updatedSpec(t *testing.T, f *fakeAPI, id string, version string) (swarm.ServiceSpec, apiRequest) {
	t.Helper()
	reqs := f.only("POST", "/services/"+id+"/update")
	if len(reqs) != 1 {
		t.Fatalf("want one update of %s, requests: %v", id, f.routesCalled())
	}
	if got := reqs[0].Query.Get("version"); got != version {
		t.Errorf("update sent version %q, want %q (the one read)", got, version)
	}
	return decodeBody[swarm.ServiceSpec](t, reqs[0]), reqs[0]
}

func richService() swarm.Service {
	svc := testService(svcWebID, "web", "app:1", 2)
	svc.Spec.Labels = map[string]string{"tier": "front", "old": "x"}
	cs := svc.Spec.TaskTemplate.ContainerSpec
	cs.Args = []string{"serve"}
	cs.Env = []string{"A=1", "B=2", "C=3"}
	cs.Labels = map[string]string{"keep": "1", "drop": "1"}
	svc.Spec.TaskTemplate.Placement = &swarm.Placement{
		Constraints: []string{"node.role==worker", "node.labels.disk==ssd"},
		Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.rack"}}},
	}
	svc.Spec.TaskTemplate.ForceUpdate = 2
	svc.Spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(5 * time.Second)}
	return svc
}

func TestServiceUpdateReadModifyWrite(t *testing.T) {
	svc := richService()
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, svc)
	f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{Warnings: []string{"careful"}})

	r := mustRun(t, f.host, "service", "update", "-d",
		"--image", "app:2", "--args", `serve --greeting 'hello world' "a \"b\""`,
		"--env-add", "B=20", "--env-add", "D=4", "--env-rm", "C",
		"--label-add", "tier=back", "--label-rm", "old",
		"--container-label-add", "new=1", "--container-label-rm", "drop",
		"--constraint-rm", "node.labels.disk==ssd", "--constraint-add", "node.labels.zone!=east",
		"--placement-pref-rm", "spread=node.labels.rack", "--placement-pref-add", "spread=node.labels.zone",
		"--replicas", "5", "--restart-max-attempts", "3", "--update-parallelism", "2",
		"--limit-memory", "256M", "--force", "--driver", "process", "--hostname", "h2",
		"web")
	if r.stdout != "web\n" || r.stderr != "careful\n" {
		t.Errorf("stdout=%q stderr=%q", r.stdout, r.stderr)
	}
	got, _ := updatedSpec(t, f, svcWebID, "42")
	want := richService().Spec
	want.Labels = map[string]string{"tier": "back"}
	cs := want.TaskTemplate.ContainerSpec
	cs.Image = "app:2"
	cs.Args = []string{"serve", "--greeting", "hello world", `a "b"`}
	cs.Env = []string{"A=1", "B=20", "D=4"}
	cs.Labels = map[string]string{"keep": "1", "new": "1", "com.flotilla.driver": "process"}
	cs.Hostname = "h2"
	want.TaskTemplate.Placement = &swarm.Placement{
		Constraints: []string{"node.role==worker", "node.labels.zone!=east"},
		Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.zone"}}},
	}
	want.Mode.Replicated.Replicas = ptr(uint64(5))
	want.TaskTemplate.RestartPolicy.MaxAttempts = ptr(uint64(3))
	want.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 256 << 20}}
	want.TaskTemplate.ForceUpdate = 3
	want.UpdateConfig.Parallelism = 2
	if !reflect.DeepEqual(got, want) {
		t.Errorf("update sent:\n%s\nwant:\n%s", specJSON(got), specJSON(want))
	}
	if got := f.routesCalled(); !slices.Equal(got, []string{"GET /services/web", "POST /services/" + svcWebID + "/update"}) {
		t.Errorf("requests: %v", got)
	}
}

func TestServiceUpdateErrors(t *testing.T) {
	global := testService(svcDBID, "agent", "agent:1", -1)
	f := newFakeAPI(t)
	f.reply("GET /services/agent", http.StatusOK, global)
	f.fail("GET /services/ghost", http.StatusNotFound, "service ghost not found")
	f.reply("GET /services/web", http.StatusOK, richService())
	f.fail("POST /services/"+svcWebID+"/update", http.StatusBadRequest, "update out of sequence")

	for _, tc := range []struct {
		args      []string
		want      string
		requested []string
	}{
		{[]string{"--rollback", "--image", "x", "web"}, "other flags may not be combined with --rollback", nil},
		{[]string{"--replicas", "-3", "web"}, "invalid --replicas -3: must be 0 or more", nil},
		{[]string{"--args", `"unclosed`, "web"}, `invalid --args "\"unclosed": unterminated " quote`, nil},
		{[]string{"--constraint-add", "nodes==3", "web"}, `invalid constraint "nodes==3"`, nil},
		{[]string{"--placement-pref-add", "spread", "web"}, `invalid placement preference "spread"`, nil},
		{[]string{"--update-order", "sideways", "web"}, `invalid --update-order "sideways"`, nil},
		{[]string{"--container-label-add", "com.flotilla.driver=kvm", "web"}, `invalid container label com.flotilla.driver "kvm"`, nil},
		{[]string{"--replicas", "3", "agent"}, "--replicas can only be used with replicated mode", []string{"GET /services/agent"}},
		{[]string{"--image", "x", "ghost"}, "no such service: ghost", []string{"GET /services/ghost"}},
		{[]string{"--image", "x", "web"}, "Error response from daemon: update out of sequence", []string{"GET /services/web", "POST /services/" + svcWebID + "/update"}},
	} {
		before := len(f.allRequests())
		r := run(t, f.host, append([]string{"service", "update"}, tc.args...)...)
		if r.err == nil || !strings.HasPrefix(r.stderr, tc.want) {
			t.Errorf("update %v: err=%v stderr=%q, want %q", tc.args, r.err, r.stderr, tc.want)
		}
		var got []string
		for _, req := range f.allRequests()[before:] {
			if req.Path != "/_ping" {
				got = append(got, req.Method+" "+req.Path)
			}
		}
		if !slices.Equal(got, tc.requested) {
			t.Errorf("update %v: requests %v, want %v", tc.args, got, tc.requested)
		}
	}
}

func TestServiceUpdateRollbackFlag(t *testing.T) {
	svc := richService()
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, svc)
	f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
	r := mustRun(t, f.host, "service", "update", "--rollback", "-d", "web")
	if r.stdout != "web\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	got, req := updatedSpec(t, f, svcWebID, "42")
	if req.Query.Get("rollback") != "previous" {
		t.Errorf("query = %v", req.Query)
	}
	if !reflect.DeepEqual(got, svc.Spec) {
		t.Errorf("update --rollback should send the spec unchanged, sent:\n%s", specJSON(got))
	}
}

func TestServiceScale(t *testing.T) {
	web := testService(svcWebID, "web", "nginx:latest", 2)
	web.Version.Index = 7
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, web)
	f.reply("GET /services/agent", http.StatusOK, testService(svcDBID, "agent", "agent:1", -1))
	f.fail("GET /services/ghost", http.StatusNotFound, "service ghost not found")
	f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})

	r := mustRun(t, f.host, "service", "scale", "-d", "web=5")
	if r.stdout != "web scaled to 5\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	got, _ := updatedSpec(t, f, svcWebID, "7")
	want := web.Spec
	want.Mode.Replicated = &swarm.ReplicatedService{Replicas: ptr(uint64(5))}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scale sent:\n%s", specJSON(got))
	}

	before := len(f.requests())
	r = run(t, f.host, "service", "scale", "-d", "agent=3", "ghost=1")
	want2 := "agent: scale can only be used with replicated mode\nghost: no such service: ghost\n"
	if r.err == nil || r.stderr != want2 || r.stdout != "" {
		t.Errorf("err=%v stdout=%q stderr=%q, want stderr %q", r.err, r.stdout, r.stderr, want2)
	}
	for _, req := range f.requests()[before:] {
		if req.Method == "POST" {
			t.Errorf("scale of a global service sent %s %s", req.Method, req.Path)
		}
	}

	for _, tc := range []struct {
		arg, want string
	}{
		{"web=-1", "web: invalid replicas value -1: must be 0 or more"},
		{"web=many", "web: invalid replicas value many: must be a whole number"},
		{"web", "invalid scale specifier 'web'.\nSee 'flotilla service scale --help'."},
		{"=3", "invalid scale specifier '=3'."},
	} {
		g := newFakeAPI(t)
		r := run(t, g.host, "service", "scale", "web=2", tc.arg)
		if r.err == nil || !strings.HasPrefix(r.stderr, tc.want) {
			t.Errorf("scale %s: err=%v stderr=%q, want %q", tc.arg, r.err, r.stderr, tc.want)
		}
		noRequests(t, g, "scale "+tc.arg)
	}
}

func TestServiceScaleWaitsForEachService(t *testing.T) {
	web := testService(svcWebID, "web", "nginx:latest", 1)
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, web)
	f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
	scaled := web
	scaled.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: ptr(uint64(2))}
	f.reply("GET /services/"+svcWebID, http.StatusOK, scaled)
	f.reply("GET /nodes", http.StatusOK, progressNodes())
	tasksSequence(f,
		fixed(testTask("t1", web, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, time.Hour)),
		fixed(testTask("t1", web, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, time.Hour),
			testTask("t2", web, 2, nodeB, swarm.TaskStateRunning, swarm.TaskStateRunning, 0)),
	)
	r := mustRun(t, f.host, "service", "scale", "web=2")
	want := "web scaled to 2\n" +
		"overall progress: 1 out of 2 tasks\n" +
		"1/2: running\n" +
		"overall progress: 2 out of 2 tasks\n" +
		"2/2: running\n" +
		"verify: Waiting 1 second to verify that tasks are stable...\n" +
		"verify: Service converged\n"
	if r.stdout != want {
		t.Errorf("scale printed:\n%s\nwant:\n%s", r.stdout, want)
	}
}

func TestServiceRollbackDetached(t *testing.T) {
	svc := richService()
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, svc)
	f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
	r := mustRun(t, f.host, "service", "rollback", "-d", "web")
	if r.stdout != "web\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	got, req := updatedSpec(t, f, svcWebID, "42")
	if req.Query.Get("rollback") != "previous" || !reflect.DeepEqual(got, svc.Spec) {
		t.Errorf("rollback sent query %v spec:\n%s", req.Query, specJSON(got))
	}

	f.fail("POST /services/"+svcWebID+"/update", http.StatusBadRequest, "service web does not have a previous spec")
	r = run(t, f.host, "service", "rollback", "web")
	if r.err == nil || r.stderr != "Error response from daemon: service web does not have a previous spec\n" {
		t.Errorf("err=%v stderr=%q", r.err, r.stderr)
	}
}

func TestServiceRm(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("DELETE /services/web", http.StatusOK, nil)
	f.reply("DELETE /services/db", http.StatusOK, nil)
	f.fail("DELETE /services/ghost", http.StatusNotFound, "service ghost not found")
	r := run(t, f.host, "service", "rm", "web", "ghost", "db")
	if r.err == nil || r.stdout != "web\ndb\n" || r.stderr != "Error response from daemon: service ghost not found\n" {
		t.Errorf("err=%v stdout=%q stderr=%q", r.err, r.stdout, r.stderr)
	}
	if got := routesOf(f, "DELETE"); !slices.Equal(got, []string{"/services/web", "/services/ghost", "/services/db"}) {
		t.Errorf("deletes: %v", got)
	}
}

func TestServiceInspect(t *testing.T) {
	svc := richService()
	svc.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "netid1"}, {Target: "netid2"}}
	svc.Spec.TaskTemplate.Resources = &swarm.ResourceRequirements{
		Reservations: &swarm.Resources{NanoCPUs: 500_000_000, MemoryBytes: 64 << 20},
		Limits:       &swarm.Limit{MemoryBytes: 1 << 30},
	}
	svc.Spec.TaskTemplate.ContainerSpec.Labels["com.flotilla.driver"] = "process"
	f := newFakeAPI(t)
	f.reply("GET /services/web", http.StatusOK, svc)
	f.fail("GET /services/ghost", http.StatusNotFound, "service ghost not found")

	r := run(t, f.host, "service", "inspect", "web", "ghost")
	if r.err == nil || r.stderr != "no such service: ghost\n" {
		t.Errorf("err=%v stderr=%q", r.err, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "[\n    {\n        \"ID\": \""+svcWebID+"\",\n") || !strings.HasSuffix(r.stdout, "}\n]\n") {
		t.Errorf("inspect printed:\n%s", r.stdout)
	}
	if q := f.only("GET", "/services/web")[0].Query; q.Get("insertDefaults") != "1" {
		t.Errorf("inspect should ask for defaults, as docker does: %v", q)
	}

	r = mustRun(t, f.host, "service", "inspect", "--format", "{{.Spec.Name}} {{.Spec.TaskTemplate.ContainerSpec.Image}}", "web")
	if r.stdout != "web app:1\n" {
		t.Errorf("inspect --format printed %q", r.stdout)
	}

	r = mustRun(t, f.host, "service", "inspect", "--pretty", "web")
	for _, want := range []string{
		"ID:                   " + svcWebID + "\nName:                 web\nLabels:\n - old=x\n - tier=front\n",
		"Service Mode:         Replicated\n Replicas:            2\n",
		"Placement:\n Constraints:         node.role==worker, node.labels.disk==ssd\n Preferences:         spread=node.labels.rack\n",
		"UpdateConfig:\n Parallelism:         1\n On failure:\n Monitoring Period:   1ms\n",
		"RestartPolicy:\n Condition:           any\n Delay:               5s\n",
		"ContainerSpec:\n Image:               app:1\n Driver:              process\n Args:                serve\n Env:                 A=1 B=2 C=3\n",
		"Resources:\n Reservations:\n  CPU:                0.5\n  Memory:             64MiB\n Limits:\n  Memory:             1GiB\n",
		"Networks:             netid1 netid2\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect --pretty lacks %q; printed:\n%s", want, r.stdout)
		}
	}
	if r := run(t, f.host, "service", "inspect", "--pretty", "--format", "{{.ID}}", "web"); r.err == nil {
		t.Error("--pretty with --format accepted")
	}
}

func TestServiceNetworkFlags(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("POST /services/create", http.StatusCreated, swarm.ServiceCreateResponse{ID: svcWebID})
	mustRun(t, f.host, "service", "create", "-d", "--network", "front", "--network", "name=back,alias=db", "nginx")
	got := createdSpec(t, f).TaskTemplate.Networks
	want := []swarm.NetworkAttachmentConfig{{Target: "front"}, {Target: "back", Aliases: []string{"db"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("create sent networks %+v; want %+v", got, want)
	}
	if r := run(t, f.host, "service", "create", "-d", "--network", "name=x,ip=1.2.3.4", "nginx"); r.err == nil || !strings.Contains(r.stderr, `unknown key "ip"`) {
		t.Errorf("a bad --network: err=%v stderr=%q", r.err, r.stderr)
	}

	// The service's spec holds network IDs; the flags give names, which
	// the CLI resolves through the API to match them.
	svc := richService()
	svc.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "netfront0000000000000001", Aliases: []string{"www"}}, {Target: "netback00000000000000002"}}
	g := newFakeAPI(t)
	g.reply("GET /services/web", http.StatusOK, svc)
	g.reply("GET /networks/back", http.StatusOK, network.Inspect{Network: network.Network{ID: "netback00000000000000002", Name: "back"}})
	g.fail("GET /networks/extra", http.StatusNotFound, "network extra not found")
	g.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
	mustRun(t, g.host, "service", "update", "-d", "--network-rm", "back", "--network-add", "name=extra,alias=x", "web")
	spec, _ := updatedSpec(t, g, svcWebID, "42")
	want = []swarm.NetworkAttachmentConfig{{Target: "netfront0000000000000001", Aliases: []string{"www"}}, {Target: "extra", Aliases: []string{"x"}}}
	if !reflect.DeepEqual(spec.TaskTemplate.Networks, want) {
		t.Errorf("update sent networks %+v; want %+v (front kept, back removed, extra added)", spec.TaskTemplate.Networks, want)
	}
}
