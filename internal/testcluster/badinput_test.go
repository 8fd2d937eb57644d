package testcluster_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/testcluster"
)

// snapshot is what a refused request must not change: every service
// (ID, version, spec) and every task ID.
type snapshot struct {
	services map[string]string
	tasks    []string
}

func takeSnapshot(t *testing.T, via *testcluster.Node) snapshot {
	t.Helper()
	res, err := via.Client.ServiceList(reqCtx(t), client.ServiceListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{services: map[string]string{}}
	for _, svc := range res.Items {
		b, _ := json.Marshal(svc.Spec)
		s.services[svc.ID] = fmt.Sprintf("v%d %s", svc.Version.Index, b)
	}
	tl, err := via.Client.TaskList(reqCtx(t), client.TaskListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.tasks = taskIDs(tl.Items)
	return s
}

func (s snapshot) diff(o snapshot) error {
	for id, v := range s.services {
		if o.services[id] != v {
			return fmt.Errorf("service %s changed: %s → %s", id, v, o.services[id])
		}
	}
	for id := range o.services {
		if _, ok := s.services[id]; !ok {
			return fmt.Errorf("service %s appeared", id)
		}
	}
	if strings.Join(s.tasks, ",") != strings.Join(o.tasks, ",") {
		return fmt.Errorf("tasks changed: %v → %v", s.tasks, o.tasks)
	}
	return nil
}

func testBadInput(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node, nodes []*testcluster.Node) {
	// A service to update badly, and one with an image no node has: the
	// fake driver runs any image, so that one is fine.
	id := createService(t, c, leader, replicated("target", 1, "V=1"))
	waitConverged(t, c, leader, id, 1, 10*time.Second)
	unknown := replicated("unknown-image", 1)
	unknown.TaskTemplate.ContainerSpec.Image = "registry.invalid/no/such-image:1.0"
	uid := createService(t, c, leader, unknown)
	waitConverged(t, c, leader, uid, 1, 10*time.Second)
	// Settled: the orchestrator is done with both (no write in flight).
	c.Eventually(5*time.Second, func() error {
		a, b := takeSnapshot(t, leader), takeSnapshot(t, leader)
		return a.diff(b)
	})
	before := takeSnapshot(t, leader)
	cur := inspectService(t, leader, id)

	type apiErr struct {
		Message string `json:"message"`
	}
	raw := func(t *testing.T, method, path, body string, wantCode int, wantMsg string) {
		t.Helper()
		code, resp := rawRequest(t, leader, method, path, body)
		var e apiErr
		if err := json.Unmarshal([]byte(resp), &e); err != nil || e.Message == "" {
			t.Errorf("%s %s: body %q is not {\"message\": ...}", method, path, resp)
		}
		t.Logf("%s %s → %d %s", method, path, code, e.Message)
		if code != wantCode || !strings.Contains(strings.ToLower(e.Message), strings.ToLower(wantMsg)) {
			t.Errorf("%s %s → %d %q; want %d mentioning %q", method, path, code, e.Message, wantCode, wantMsg)
		}
	}
	specJSON := func(change func(*swarm.ServiceSpec)) string {
		s := replicated("bad", 1)
		change(&s)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	create := "/v1.47/services/create"
	cases := []struct {
		name, path, body string
		code             int
		msg              string
	}{
		{"MissingContainerSpec", create, `{"Name":"bad","TaskTemplate":{}}`, http.StatusBadRequest, "ContainerSpec"},
		{"EmptyImage", create, specJSON(func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "" }), http.StatusBadRequest, "image"},
		{"InvalidConstraint", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.role=worker"}}
		}), http.StatusBadRequest, "constraint"},
		{"InvalidRestartCondition", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: "sometimes"}
		}), http.StatusBadRequest, "restart condition"},
		{"NegativeRestartDelay", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Delay: ptr(-time.Second)}
		}), http.StatusBadRequest, "delay"},
		{"NegativeReplicas", create, `{"Name":"bad","Mode":{"Replicated":{"Replicas":-1}},"TaskTemplate":{"ContainerSpec":{"Image":"fake"}}}`, http.StatusBadRequest, "replicas"},
		{"BillionReplicas", create, `{"Name":"bad","Mode":{"Replicated":{"Replicas":1000000000}},"TaskTemplate":{"ContainerSpec":{"Image":"fake"}}}`, http.StatusBadRequest, "Replicas is 1000000000, above the maximum of 100000"},
		{"MaxUint64Replicas", create, `{"Name":"bad","Mode":{"Replicated":{"Replicas":18446744073709551615}},"TaskTemplate":{"ContainerSpec":{"Image":"fake"}}}`, http.StatusBadRequest, "above the maximum"},
		{"EmptySpreadLabel", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Placement = &swarm.Placement{Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels."}}}}
		}), http.StatusBadRequest, "preference"},
		{"PublishedSCTPPort", create, specJSON(func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080, Protocol: "sctp"}}}
		}), http.StatusBadRequest, "Protocol sctp (--publish protocol=sctp) is not supported yet"},
		{"BadPublishMode", create, specJSON(func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080, PublishMode: "bridge"}}}
		}), http.StatusBadRequest, "invalid publish mode \"bridge\""},
		{"PortZeroTarget", create, specJSON(func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{PublishedPort: 8080}}}
		}), http.StatusBadRequest, "invalid target port 0"},
		{"PortTooBig", create, specJSON(func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 70000}}}
		}), http.StatusBadRequest, "invalid published port 70000"},
		{"PortTwice", create, specJSON(func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080}, {TargetPort: 81, PublishedPort: 8080}}}
		}), http.StatusBadRequest, "published port 8080/tcp is given twice"},
		{"BadProtocol", create, specJSON(func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, Protocol: "icmp"}}}
		}), http.StatusBadRequest, "invalid protocol \"icmp\""},
		{"BadProxyProtocolLabel", create, specJSON(func(s *swarm.ServiceSpec) {
			s.Labels = map[string]string{"com.flotilla.proxy-protocol": "v3"}
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80}}}
		}), http.StatusBadRequest, "invalid label com.flotilla.proxy-protocol=\"v3\""},
		{"IngressWithDNSRR", create, specJSON(func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: []swarm.PortConfig{{TargetPort: 80}}}
		}), http.StatusBadRequest, "can't be used with dnsrr mode"},
		{"HealthIntervalTooShort", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Microsecond}
		}), http.StatusBadRequest, "ContainerSpec.Healthcheck.Interval 1µs cannot be less than 1ms"},
		{"HealthNegativeTimeout", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}, Timeout: -time.Second}
		}), http.StatusBadRequest, "ContainerSpec.Healthcheck.Timeout -1s must not be negative"},
		{"HealthNegativeRetries", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}, Retries: -1}
		}), http.StatusBadRequest, "Retries -1 must not be negative"},
		{"HealthBadTest", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"curl", "localhost"}}
		}), http.StatusBadRequest, `unknown form "curl"`},
		{"HealthShellTwoArgs", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "true", "false"}}
		}), http.StatusBadRequest, "exactly one non-empty shell command"},
		{"RelativeBindSource", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "tmp", Target: "/data"}}
		}), http.StatusBadRequest, "must be an absolute path"},
		{"UnknownNetwork", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: "backend"}}
		}), http.StatusNotFound, "network backend not found"},
		{"UnknownSecret", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Secrets = []*swarm.SecretReference{{SecretName: "db-password"}}
		}), http.StatusBadRequest, "secret not found: db-password"},
		{"HugeParallelism", create, specJSON(func(s *swarm.ServiceSpec) {
			s.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1 << 63}
		}), http.StatusBadRequest, "UpdateConfig.Parallelism"},
		{"HugeMaxAttempts", create, specJSON(func(s *swarm.ServiceSpec) {
			s.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{MaxAttempts: ptr(uint64(1) << 40)}
		}), http.StatusBadRequest, "MaxAttempts"},
		{"InvalidFailureAction", create, specJSON(func(s *swarm.ServiceSpec) {
			s.UpdateConfig = &swarm.UpdateConfig{FailureAction: "explode"}
		}), http.StatusBadRequest, "failure action"},
		{"NameConflict", create, specJSON(func(s *swarm.ServiceSpec) { s.Name = "target" }), http.StatusConflict, "target"},
		{"UnknownServiceInspect", "/v1.47/services/no-such-service", "", http.StatusNotFound, "no-such-service"},
		{"UnknownServiceUpdate", "/v1.47/services/no-such-service/update?version=1", specJSON(func(*swarm.ServiceSpec) {}), http.StatusNotFound, "no-such-service"},
		{"UnknownServiceRemove", "/v1.47/services/no-such-service", "", http.StatusNotFound, "no-such-service"},
		{"StaleVersion", fmt.Sprintf("/v1.47/services/%s/update?version=%d", id, cur.Version.Index-1),
			specJSON(func(s *swarm.ServiceSpec) { s.Name = "target"; s.TaskTemplate.ContainerSpec.Env = []string{"V=stale"} }),
			http.StatusConflict, "out of sequence"},
		{"ModeChange", fmt.Sprintf("/v1.47/services/%s/update?version=%d", id, cur.Version.Index),
			`{"Name":"target","Mode":{"Global":{}},"TaskTemplate":{"ContainerSpec":{"Image":"fake"}}}`, http.StatusBadRequest, "mode"},
		{"BillionReplicasOnUpdate", fmt.Sprintf("/v1.47/services/%s/update?version=%d", id, cur.Version.Index),
			`{"Name":"target","Mode":{"Replicated":{"Replicas":1000000000}},"TaskTemplate":{"ContainerSpec":{"Image":"fake"}}}`, http.StatusBadRequest, "above the maximum"},
		{"MaxUint64ReplicasOnUpdate", fmt.Sprintf("/v1.47/services/%s/update?version=%d", id, cur.Version.Index),
			`{"Name":"target","Mode":{"Replicated":{"Replicas":18446744073709551615}},"TaskTemplate":{"ContainerSpec":{"Image":"fake"}}}`, http.StatusBadRequest, "above the maximum"},
		{"InvalidConstraintOnUpdate", fmt.Sprintf("/v1.47/services/%s/update?version=%d", id, cur.Version.Index),
			specJSON(func(s *swarm.ServiceSpec) {
				s.Name = "target"
				s.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.role=worker"}}
			}), http.StatusBadRequest, "constraint"},
		{"HealthIntervalOnUpdate", fmt.Sprintf("/v1.47/services/%s/update?version=%d", id, cur.Version.Index),
			specJSON(func(s *swarm.ServiceSpec) {
				s.Name = "target"
				s.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: -time.Second}
			}), http.StatusBadRequest, "Healthcheck.Interval -1s must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			switch {
			case tc.name == "UnknownServiceInspect":
				method = http.MethodGet
			case tc.name == "UnknownServiceRemove":
				method = http.MethodDelete
			}
			raw(t, method, tc.path, tc.body, tc.code, tc.msg)
		})
	}

	// Through the client library too, on every node: the same answers
	// (followers forward writes; a worker has no control plane).
	for _, n := range nodes {
		_, err := n.Client.ServiceInspect(reqCtx(t), "no-such-service", client.ServiceInspectOptions{})
		if n.Name == "m0" && !cerrdefs.IsNotFound(err) {
			t.Errorf("inspect of an unknown service on %s: %v, want 404", n.Name, err)
		}
		if n.Name != "m0" && !cerrdefs.IsUnavailable(err) {
			t.Errorf("inspect of a service on worker %s: %v, want 503", n.Name, err)
		}
	}
	_, err := leader.Client.ServiceUpdate(reqCtx(t), id, client.ServiceUpdateOptions{Version: swarm.Version{Index: cur.Version.Index - 1}, Spec: cur.Spec})
	if !cerrdefs.IsConflict(err) {
		t.Errorf("stale update through the client: %v, want 409", err)
	}
	_, err = leader.Client.ServiceCreate(reqCtx(t), client.ServiceCreateOptions{Spec: replicated("target", 3)})
	if !cerrdefs.IsConflict(err) {
		t.Errorf("name conflict through the client: %v, want 409", err)
	}

	if err := before.diff(takeSnapshot(t, leader)); err != nil {
		t.Errorf("refused requests changed the state: %v", err)
	}
	waitConverged(t, c, leader, id, 1, 5*time.Second)
}
