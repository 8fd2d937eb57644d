package cli_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func ptr[T any](v T) *T { return &v }

func createdSpec(t *testing.T, f *fakeAPI) swarm.ServiceSpec {
	t.Helper()
	reqs := f.only("POST", "/services/create")
	if len(reqs) != 1 {
		t.Fatalf("want one POST /services/create, got requests %v", f.routesCalled())
	}
	return decodeBody[swarm.ServiceSpec](t, reqs[0])
}

func specJSON(s swarm.ServiceSpec) string {
	b, _ := json.MarshalIndent(s, "", "  ")
	return string(b)
}

func TestServiceCreateSendsEveryFlagFamily(t *testing.T) {
	t.Setenv("FLOTILLA_TEST_TOKEN", "from-env")
	f := newFakeAPI(t)
	f.reply("POST /services/create", http.StatusCreated, swarm.ServiceCreateResponse{ID: svcWebID})

	r := mustRun(t, f.host, "service", "create", "-d",
		"--name", "web", "--replicas", "3",
		"--env", "A=1", "-e", "B=2", "--env", "A=3", "--env", "FLOTILLA_TEST_TOKEN", "--env", "UNSET_IN_CLI_ENV_1234",
		"--label", "tier=front", "-l", "bare",
		"--container-label", "x=y",
		"--constraint", "node.role==worker", "--constraint", "node.labels.disk!=hdd",
		"--placement-pref", "spread=node.labels.zone",
		"--reserve-cpu", "0.5", "--reserve-memory", "64M", "--limit-cpu", "1.5", "--limit-memory", "1G",
		"--restart-condition", "on-failure", "--restart-delay", "2s", "--restart-max-attempts", "4", "--restart-window", "1m",
		"--update-parallelism", "2", "--update-delay", "10s", "--update-monitor", "3s", "--update-failure-action", "rollback",
		"--update-max-failure-ratio", "0.25", "--update-order", "start-first",
		"--rollback-parallelism", "0", "--rollback-failure-action", "continue",
		"--stop-grace-period", "30s", "--workdir", "/srv", "--user", "nobody", "--hostname", "h1",
		"--driver", "process",
		"busybox", "sleep", "100", "--not-a-flag")

	if r.stdout != svcWebID+"\n" {
		t.Errorf("create -d printed %q, want the service ID", r.stdout)
	}
	want := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "web", Labels: map[string]string{"tier": "front", "bare": ""}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           "busybox:latest", // the client library adds the tag, as for docker
				Args:            []string{"sleep", "100", "--not-a-flag"},
				Env:             []string{"A=3", "B=2", "FLOTILLA_TEST_TOKEN=from-env", "UNSET_IN_CLI_ENV_1234"},
				Labels:          map[string]string{"x": "y", "com.flotilla.driver": "process"},
				Dir:             "/srv",
				User:            "nobody",
				Hostname:        "h1",
				StopGracePeriod: ptr(30 * time.Second),
			},
			Resources: &swarm.ResourceRequirements{
				Limits:       &swarm.Limit{NanoCPUs: 1_500_000_000, MemoryBytes: 1 << 30},
				Reservations: &swarm.Resources{NanoCPUs: 500_000_000, MemoryBytes: 64 << 20},
			},
			RestartPolicy: &swarm.RestartPolicy{
				Condition: swarm.RestartPolicyConditionOnFailure, Delay: ptr(2 * time.Second),
				MaxAttempts: ptr(uint64(4)), Window: ptr(time.Minute),
			},
			Placement: &swarm.Placement{
				Constraints: []string{"node.role==worker", "node.labels.disk!=hdd"},
				Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.zone"}}},
			},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(3))}},
		UpdateConfig: &swarm.UpdateConfig{
			Parallelism: 2, Delay: 10 * time.Second, FailureAction: swarm.UpdateFailureActionRollback,
			Monitor: 3 * time.Second, MaxFailureRatio: 0.25, Order: swarm.UpdateOrderStartFirst,
		},
		RollbackConfig: &swarm.UpdateConfig{
			Parallelism: 0, FailureAction: swarm.UpdateFailureActionContinue,
			Monitor: 5 * time.Second, Order: swarm.UpdateOrderStopFirst,
		},
	}
	if got := createdSpec(t, f); !reflect.DeepEqual(got, want) {
		t.Errorf("spec sent:\n%s\nwant:\n%s", specJSON(got), specJSON(want))
	}
	if got := f.routesCalled(); !slices.Equal(got, []string{"POST /services/create"}) {
		t.Errorf("create -d made requests %v", got)
	}
}

func TestServiceCreateLeavesUnsetFamiliesToTheDaemon(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want swarm.ServiceSpec
	}{{
		name: "image only",
		args: []string{"nginx"},
		want: swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "nginx:latest"}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{}},
		},
	}, {
		name: "global, one flag of each family",
		args: []string{"--mode", "global", "--update-delay", "5s", "--rollback-order", "start-first", "--restart-condition", "none", "--limit-memory", "128m", "/usr/bin/worker", "--verbose"},
		want: swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: "/usr/bin/worker", Args: []string{"--verbose"}},
				Resources:     &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 128 << 20}},
				RestartPolicy: &swarm.RestartPolicy{
					Condition: swarm.RestartPolicyConditionNone, Delay: ptr(5 * time.Second),
					MaxAttempts: ptr(uint64(0)), Window: ptr(time.Duration(0)),
				},
			},
			Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
			UpdateConfig: &swarm.UpdateConfig{
				Parallelism: 1, Delay: 5 * time.Second, FailureAction: swarm.UpdateFailureActionPause,
				Monitor: 5 * time.Second, Order: swarm.UpdateOrderStopFirst,
			},
			RollbackConfig: &swarm.UpdateConfig{
				Parallelism: 1, FailureAction: swarm.UpdateFailureActionPause,
				Monitor: 5 * time.Second, Order: swarm.UpdateOrderStartFirst,
			},
		},
	}, {
		name: "driver through the container label, as a docker user sets it",
		args: []string{"--container-label", "com.flotilla.driver=process", "--replicas", "0", "sleep", "60"},
		want: swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
				Image: "sleep:latest", Args: []string{"60"}, Labels: map[string]string{"com.flotilla.driver": "process"},
			}},
			Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: ptr(uint64(0))}},
		},
	}, {
		name: "docker driver",
		args: []string{"--driver", "docker", "--reserve-cpu", "2", "alpine"},
		want: swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: "alpine:latest", Labels: map[string]string{"com.flotilla.driver": "docker"}},
				Resources:     &swarm.ResourceRequirements{Reservations: &swarm.Resources{NanoCPUs: 2_000_000_000}},
			},
			Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.reply("POST /services/create", http.StatusCreated, swarm.ServiceCreateResponse{ID: svcWebID})
			mustRun(t, f.host, append([]string{"service", "create", "-d"}, tc.args...)...)
			if got := createdSpec(t, f); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("spec sent:\n%s\nwant:\n%s", specJSON(got), specJSON(tc.want))
			}
		})
	}
}

func TestServiceCreateRejectsBadFlagsWithoutSendingAnything(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--replicas", "-1"}, "invalid --replicas -1: must be 0 or more"},
		{[]string{"--mode", "global", "--replicas", "2"}, "--replicas can only be used with replicated mode"},
		{[]string{"--mode", "daemonset"}, `invalid --mode "daemonset": must be "replicated" or "global"`},
		{[]string{"--restart-delay", "5x"}, `invalid argument "5x" for "--restart-delay" flag: time: unknown unit "x" in duration "5x"`},
		{[]string{"--restart-delay", "-1s"}, "invalid --restart-delay -1s: must not be negative"},
		{[]string{"--update-delay", "soon"}, `invalid argument "soon" for "--update-delay" flag`},
		{[]string{"--stop-grace-period", "-5s"}, "invalid --stop-grace-period -5s: must not be negative"},
		{[]string{"--reserve-memory", "64Q"}, `invalid --reserve-memory "64Q": must be a number of bytes with an optional unit b, k, m, g, t (e.g. 64M, 1.5G)`},
		{[]string{"--limit-memory", "-1"}, `invalid --limit-memory "-1": must be a number of bytes`},
		{[]string{"--limit-cpu", "lots"}, `invalid --limit-cpu "lots": must be a number of CPUs, such as 0.5 or 2`},
		{[]string{"--reserve-cpu", "-1"}, `invalid --reserve-cpu "-1": must not be negative`},
		{[]string{"--reserve-cpu", "0.0000000001"}, `invalid --reserve-cpu "0.0000000001": too precise (at most 9 decimal places)`},
		{[]string{"--restart-condition", "sometimes"}, `invalid --restart-condition "sometimes": must be "none", "on-failure" or "any"`},
		{[]string{"--restart-max-attempts", "-2"}, "invalid --restart-max-attempts -2: must be 0 or more"},
		{[]string{"--update-failure-action", "explode"}, `invalid --update-failure-action "explode": must be "pause", "continue" or "rollback"`},
		{[]string{"--rollback-failure-action", "rollback"}, `invalid --rollback-failure-action "rollback": must be "pause" or "continue"`},
		{[]string{"--update-order", "random"}, `invalid --update-order "random": must be "stop-first" or "start-first"`},
		{[]string{"--rollback-order", "first"}, `invalid --rollback-order "first": must be "stop-first" or "start-first"`},
		{[]string{"--update-max-failure-ratio", "2"}, "invalid --update-max-failure-ratio 2: must be between 0 and 1"},
		{[]string{"--update-parallelism", "-1"}, "invalid --update-parallelism -1: must be 0 or more"},
		{[]string{"--placement-pref", "zone"}, `invalid placement preference "zone": expected spread=node.labels.LABEL`},
		{[]string{"--placement-pref", "pack=node.labels.zone"}, `invalid placement preference "pack=node.labels.zone": unsupported strategy "pack" (only spread is supported)`},
		{[]string{"--placement-pref", "spread=zone"}, `invalid placement preference "spread=zone": can only spread over node.labels.LABEL or engine.labels.LABEL`},
		{[]string{"--constraint", "node.role=worker"}, `invalid constraint "node.role=worker": expected an operator == or !=; did you mean "node.role==worker"?`},
		{[]string{"--constraint", "node.role=="}, `invalid constraint "node.role==": empty value after ==`},
		{[]string{"--constraint", "node.labels.==a"}, `invalid constraint "node.labels.==a": missing label name`},
		{[]string{"--constraint", "rack==a"}, `invalid constraint "rack==a": unknown key "rack"`},
		{[]string{"--driver", "vm"}, `invalid --driver "vm": must be "docker" or "process"`},
		{[]string{"--container-label", "com.flotilla.driver=vm"}, `invalid container label com.flotilla.driver "vm": must be "docker" or "process"`},
		{[]string{"--driver", "process", "--container-label", "com.flotilla.driver=docker"}, "conflicting drivers: --driver process and --container-label com.flotilla.driver=docker"},
		{[]string{"--env", "=x"}, `invalid environment variable "=x": expected KEY=VALUE`},
		{[]string{"--label", "=x"}, `invalid label "=x": expected key=value`},
		{[]string{"--timeout", "-1s"}, "invalid --timeout -1s: must not be negative"},
	} {
		f := newFakeAPI(t)
		r := run(t, f.host, append(append([]string{"service", "create"}, tc.args...), "busybox")...)
		if r.err == nil {
			t.Errorf("create %v succeeded", tc.args)
			continue
		}
		if !strings.HasPrefix(r.stderr, tc.want) {
			t.Errorf("create %v: stderr = %q, want it to start with %q", tc.args, r.stderr, tc.want)
		}
		noRequests(t, f, strings.Join(tc.args, " "))
	}

	f := newFakeAPI(t)
	if r := run(t, f.host, "service", "create"); r.err == nil || !strings.Contains(r.stderr, `"flotilla service create" requires at least 1 argument.`) {
		t.Errorf("create without image: err=%v stderr=%q", r.err, r.stderr)
	}
	noRequests(t, f, "create without image")
}

func TestServiceCreateDaemonErrorAndWarnings(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("POST /services/create", http.StatusConflict, "rpc error: name conflicts with an existing object")
	r := run(t, f.host, "service", "create", "-d", "--name", "web", "nginx")
	if r.err == nil || r.stderr != "Error response from daemon: rpc error: name conflicts with an existing object\n" || r.stdout != "" {
		t.Errorf("err=%v stdout=%q stderr=%q", r.err, r.stdout, r.stderr)
	}

	f.reply("POST /services/create", http.StatusCreated, swarm.ServiceCreateResponse{ID: svcWebID, Warnings: []string{"image nginx:latest could not be accessed on a registry"}})
	r = mustRun(t, f.host, "service", "create", "-d", "-q", "nginx")
	if r.stdout != svcWebID+"\n" || r.stderr != "image nginx:latest could not be accessed on a registry\n" {
		t.Errorf("stdout=%q stderr=%q", r.stdout, r.stderr)
	}
}
