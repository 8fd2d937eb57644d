package cli_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
)

func TestServiceCreateHealthFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want *container.HealthConfig
	}{
		{nil, nil},
		{[]string{"--health-cmd", "test -f /tmp/ok", "--health-interval", "2s", "--health-timeout", "1s",
			"--health-retries", "2", "--health-start-period", "10s", "--health-start-interval", "500ms"},
			&container.HealthConfig{Test: []string{"CMD-SHELL", "test -f /tmp/ok"}, Interval: 2 * time.Second, Timeout: time.Second,
				Retries: 2, StartPeriod: 10 * time.Second, StartInterval: 500 * time.Millisecond}},
		// Timings alone keep the image's own check command.
		{[]string{"--health-interval", "5s"}, &container.HealthConfig{Interval: 5 * time.Second}},
		{[]string{"--no-healthcheck"}, &container.HealthConfig{Test: []string{"NONE"}}},
	} {
		f := newFakeAPI(t)
		f.reply("POST /services/create", http.StatusCreated, swarm.ServiceCreateResponse{ID: svcWebID})
		mustRun(t, f.host, append(append([]string{"service", "create", "-d"}, tc.args...), "busybox")...)
		got := createdSpec(t, f).TaskTemplate.ContainerSpec.Healthcheck
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("create %v: Healthcheck = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

func TestServiceUpdateHealthFlags(t *testing.T) {
	cur := &container.HealthConfig{Test: []string{"CMD-SHELL", "check"}, Interval: time.Second, Retries: 5}
	for _, tc := range []struct {
		name string
		from *container.HealthConfig
		args []string
		want *container.HealthConfig
	}{
		{"OnlyGivenFieldsChange", cur, []string{"--health-timeout", "3s"},
			&container.HealthConfig{Test: []string{"CMD-SHELL", "check"}, Interval: time.Second, Timeout: 3 * time.Second, Retries: 5}},
		{"NewCommand", cur, []string{"--health-cmd", "other"},
			&container.HealthConfig{Test: []string{"CMD-SHELL", "other"}, Interval: time.Second, Retries: 5}},
		{"EmptyCommandFallsBackToImage", cur, []string{"--health-cmd", ""},
			&container.HealthConfig{Interval: time.Second, Retries: 5}},
		{"Disable", cur, []string{"--no-healthcheck"}, &container.HealthConfig{Test: []string{"NONE"}}},
		{"ReEnableAfterNone", &container.HealthConfig{Test: []string{"NONE"}}, []string{"--health-retries", "1"},
			&container.HealthConfig{Retries: 1}},
		{"FromNothing", nil, []string{"--health-cmd", "c"}, &container.HealthConfig{Test: []string{"CMD-SHELL", "c"}}},
		{"Untouched", cur, []string{"--replicas", "2"}, cur},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := testService(svcWebID, "web", "app:1", 1)
			if tc.from != nil {
				h := *tc.from
				svc.Spec.TaskTemplate.ContainerSpec.Healthcheck = &h
			}
			f := newFakeAPI(t)
			f.reply("GET /services/web", http.StatusOK, svc)
			f.reply("POST /services/"+svcWebID+"/update", http.StatusOK, swarm.ServiceUpdateResponse{})
			mustRun(t, f.host, append(append([]string{"service", "update", "-d"}, tc.args...), "web")...)
			got, _ := updatedSpec(t, f, svcWebID, "42")
			if h := got.TaskTemplate.ContainerSpec.Healthcheck; !reflect.DeepEqual(h, tc.want) {
				t.Errorf("Healthcheck = %+v, want %+v", h, tc.want)
			}
		})
	}
}

func TestServiceHealthFlagsRefuseBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--no-healthcheck", "--health-cmd", "true"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"--health-interval", "-1s"}, "invalid --health-interval -1s: must not be negative"},
		{[]string{"--health-timeout", "10us"}, "invalid --health-timeout 10µs: must be at least 1ms (or 0 for the default)"},
		{[]string{"--health-start-period", "-5m"}, "invalid --health-start-period -5m0s: must not be negative"},
		{[]string{"--health-retries", "-1"}, "invalid --health-retries -1: must be 0 or more"},
		{[]string{"--health-interval", "often"}, `invalid argument "often" for "--health-interval" flag`},
	} {
		for _, verb := range []string{"create", "update"} {
			f := newFakeAPI(t)
			r := run(t, f.host, append(append([]string{"service", verb}, tc.args...), "web")...)
			if r.err == nil || !strings.HasPrefix(r.stderr, tc.want) {
				t.Errorf("%s %v: err %v, stderr %q, want it to start with %q", verb, tc.args, r.err, r.stderr, tc.want)
			}
			noRequests(t, f, verb+" "+strings.Join(tc.args, " "))
		}
	}
}

func TestServicePsShowsHealth(t *testing.T) {
	web := testService(svcWebID, "web", "app:1", 3)
	web.Spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "check"}}
	f := newFakeAPI(t)
	f.reply("GET /services", http.StatusOK, []swarm.Service{web})
	f.reply("GET /nodes", http.StatusOK, progressNodes())
	f.reply("GET /info", http.StatusOK, managerInfo())
	f.handle("GET /tasks", func(w http.ResponseWriter, _ *http.Request) {
		starting := testTask("task1starting000000000000", web, 1, nodeA, swarm.TaskStateRunning, swarm.TaskStateStarting, time.Minute)
		healthy := testTask("task2healthy0000000000000", web, 2, nodeA, swarm.TaskStateRunning, swarm.TaskStateRunning, time.Minute)
		healthy.Status.Message = "healthy"
		sick := withErr(testTask("task3sick0000000000000000", web, 3, nodeA, swarm.TaskStateShutdown, swarm.TaskStateFailed, time.Minute),
			"task: unhealthy container")
		sick.Status.Message = "unhealthy"
		for _, tk := range []*swarm.Task{&starting, &healthy, &sick} {
			tk.Spec = web.Spec.TaskTemplate
		}
		writeJSON(w, http.StatusOK, []swarm.Task{starting, healthy, sick})
	})
	r := mustRun(t, f.host, "service", "ps", "--format", "{{.Name}} {{.CurrentState}}", "web")
	for _, want := range []string{"web.1 Starting (health: starting) ", "web.2 Running (healthy) ", "web.3 Failed (unhealthy) "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("service ps printed:\n%s\nwant a line starting %q", r.stdout, want)
		}
	}
}
