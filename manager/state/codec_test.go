package state

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
)

// richObjects are objects of every table with most fields set: pointers,
// maps, byte slices, times, durations, netip prefixes, raw JSON.
func richObjects() []Object {
	at := time.Date(2026, 12, 4, 17, 1, 2, 345678901, time.UTC)
	grace := 5 * time.Second
	replicas := uint64(3)
	spec := swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{Image: "web:1 <&>", Labels: map[string]string{"b": "2", "a": "1"}, Command: []string{"/web"},
			Env: []string{"A=1", "B=ü"}, Dir: "/", User: "1000", StopGracePeriod: &grace, ReadOnly: true,
			Mounts:      []mount.Mount{{Type: mount.TypeTmpfs, Target: "/tmp"}},
			Healthcheck: nil,
			Secrets:     []*swarm.SecretReference{{SecretID: "s1", SecretName: "pw", File: &swarm.SecretReferenceFileTarget{Name: "pw", UID: "0", GID: "0", Mode: 0o400}}},
		},
		Resources:     &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: 5e8, MemoryBytes: 1 << 28}},
		RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, MaxAttempts: &replicas},
		Placement:     &swarm.Placement{Constraints: []string{"node.role==worker"}, Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.zone"}}}},
		Networks:      []swarm.NetworkAttachmentConfig{{Target: "n1", Aliases: []string{"api"}}},
		ForceUpdate:   2,
	}
	t := &Task{SpecVersion: 4, ShutdownReason: "update", StatusAt: at}
	t.ID, t.ServiceID, t.NodeID, t.Slot = "t1", "svc", "node", 7
	t.Version.Index, t.CreatedAt, t.UpdatedAt = 42, at, at.Add(time.Second)
	t.Spec = spec
	t.Annotations = swarm.Annotations{Name: "web.7", Labels: map[string]string{"x": "y"}}
	t.DesiredState = swarm.TaskStateRunning
	t.Status = swarm.TaskStatus{Timestamp: at, State: swarm.TaskStateRunning, Message: "started", Err: "",
		ContainerStatus: &swarm.ContainerStatus{ContainerID: "abc", PID: 12, ExitCode: 0}}
	t.NetworksAttachments = []swarm.NetworkAttachment{{Network: swarm.Network{ID: "n1"}, Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.1.5/24")}}}
	t.Ports = []swarm.PortConfig{{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}

	s := &Service{SpecVersion: 4, PreviousSpecVersion: 3}
	s.ID, s.CreatedAt = "svc", at
	s.Spec = swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"}, TaskTemplate: spec,
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 2, Delay: time.Second, FailureAction: "rollback", Monitor: 5 * time.Second, MaxFailureRatio: 0.25},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: t.Ports}}
	s.Endpoint = swarm.Endpoint{Spec: *s.Spec.EndpointSpec, Ports: t.Ports,
		VirtualIPs: []swarm.EndpointVirtualIP{{NetworkID: "n1", Addr: netip.MustParsePrefix("10.0.1.2/24")}}}
	s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, StartedAt: &at, Message: "updating"}

	n := &Node{Role: swarm.NodeRoleWorker, Addr: "10.0.0.4:2377", StateSince: at}
	n.ID = "node"
	n.Description = swarm.NodeDescription{Hostname: "w1", Platform: swarm.Platform{Architecture: "x86_64", OS: "linux"},
		Resources: swarm.Resources{NanoCPUs: 2e9, MemoryBytes: 1 << 34}, Engine: swarm.EngineDescription{EngineVersion: "flotilla", Labels: map[string]string{"k": "v"}}}
	n.Status = swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0.4"}
	n.Spec = swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityActive, Annotations: swarm.Annotations{Labels: map[string]string{"zone": "a"}}}

	sec := &Secret{}
	sec.ID, sec.Spec.Name, sec.Spec.Data = "s1", "pw", []byte{0, 1, 2, 0xff, '"'}
	cfg := &Config{}
	cfg.ID, cfg.Spec.Name, cfg.Spec.Data = "c1", "conf", []byte("a: 1\n")
	nw := &Network{}
	nw.ID, nw.Spec.Name, nw.Spec.Attachable = "n1", "backend", true
	nw.IPAMOptions = &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1")}}}
	c := &Cluster{RootCACertPEM: []byte("-----BEGIN CERT-----\n"), WorkerToken: "SWMTKN-1-x", RemovedNodes: []string{"gone"}}
	c.ID = "cluster"
	c.Spec.Dispatcher.HeartbeatPeriod = time.Second
	return []Object{t, s, n, sec, cfg, nw, c}
}

// The state's codec decodes what encoding/json wrote, and what it writes
// itself, into the same objects as encoding/json: every manager must
// apply the same entry to the same state, and snapshots (encoding/json)
// must hold what the log did.
func TestCodecMatchesEncodingJSON(t *testing.T) {
	for _, obj := range richObjects() {
		name := reflect.TypeOf(obj).Elem().Name()
		std, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := marshalJSON(obj)
		if err != nil {
			t.Fatalf("%s: codec marshal: %v", name, err)
		}
		for label, data := range map[string][]byte{"encoding/json's": std, "the codec's": ours} {
			want := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
			if err := json.Unmarshal(data, want); err != nil {
				t.Fatalf("%s: encoding/json cannot read %s encoding: %v", name, label, err)
			}
			got := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
			if err := unmarshalJSON(data, got); err != nil {
				t.Fatalf("%s: codec cannot read %s encoding: %v", name, label, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s from %s encoding: codec decoded\n%+v\nencoding/json decoded\n%+v", name, label, got, want)
			}
			if !reflect.DeepEqual(got, obj) {
				t.Errorf("%s from %s encoding does not round-trip:\n%+v\nwant\n%+v", name, label, got, obj)
			}
		}
	}
}

// A malformed object is refused, as encoding/json refuses it.
func TestCodecRefusesMalformed(t *testing.T) {
	for _, bad := range []string{`{"ID":`, `{"ID":1}`, `[]`, `{"Slot":"x"}`, `{"Spec":{"ContainerSpec":{"Env":"A=1"}}}`} {
		var task Task
		if err := unmarshalJSON([]byte(bad), &task); err == nil {
			t.Errorf("codec accepted %s", bad)
		}
		if err := json.Unmarshal([]byte(bad), &task); err == nil {
			t.Errorf("encoding/json accepted %s (the test's premise)", bad)
		}
	}
}
