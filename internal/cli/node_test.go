package cli_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

const (
	idM1  = "1a2b3c4d5e6f7g8h9i0jklmno" // the node the CLI talks to
	idM2  = "2bcdefghijklmnopqrstuvwxy"
	idM10 = "3cdefghijklmnopqrstuvwxyz"
	idW2  = "4defghijklmnopqrstuvwxyza"
	idW10 = "5efghijklmnopqrstuvwxyzab"
)

func node(id, hostname string, role swarm.NodeRole, state swarm.NodeState, avail swarm.NodeAvailability, engine string, ms *swarm.ManagerStatus) swarm.Node {
	n := swarm.Node{ID: id}
	n.Version.Index = 10
	n.Spec.Role = role
	n.Spec.Availability = avail
	n.Description.Hostname = hostname
	n.Description.Engine.EngineVersion = engine
	n.Description.Platform = swarm.Platform{OS: "linux", Architecture: "x86_64"}
	n.Status = swarm.NodeStatus{State: state, Addr: "10.0.0.1"}
	n.ManagerStatus = ms
	return n
}

// clusterNodes is five nodes in no particular order.
func clusterNodes() []swarm.Node {
	return []swarm.Node{
		node(idW10, "worker-10", swarm.NodeRoleWorker, swarm.NodeStateReady, swarm.NodeAvailabilityActive, "27.1.0", nil),
		node(idM2, "manager-2", swarm.NodeRoleManager, swarm.NodeStateReady, swarm.NodeAvailabilityActive, "27.1.0",
			&swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable, Addr: "10.0.0.2:2377"}),
		node(idW2, "worker-2", swarm.NodeRoleWorker, swarm.NodeStateReady, swarm.NodeAvailabilityDrain, "27.1.0", nil),
		node(idM1, "manager-1", swarm.NodeRoleManager, swarm.NodeStateReady, swarm.NodeAvailabilityActive, "27.1.0",
			&swarm.ManagerStatus{Leader: true, Reachability: swarm.ReachabilityReachable, Addr: "10.0.0.1:2377"}),
		node(idM10, "manager-10", swarm.NodeRoleManager, swarm.NodeStateDown, swarm.NodeAvailabilityPause, "27.0.3",
			&swarm.ManagerStatus{Reachability: swarm.ReachabilityUnreachable, Addr: "10.0.0.10:2377"}),
	}
}

func managerInfo() system.Info {
	return system.Info{
		ID:              "ENGINE-ID",
		Name:            "manager-1",
		ServerVersion:   "0.9.0",
		OperatingSystem: "Flotilla",
		OSType:          "linux",
		Architecture:    "x86_64",
		NCPU:            4,
		Swarm: swarm.Info{
			NodeID:           idM1,
			NodeAddr:         "10.0.0.1",
			LocalNodeState:   swarm.LocalNodeStateActive,
			ControlAvailable: true,
			Managers:         3,
			Nodes:            5,
			RemoteManagers: []swarm.Peer{
				{NodeID: idM2, Addr: "10.0.0.2:2377"},
				{NodeID: idM1, Addr: "10.0.0.1:2377"},
				{NodeID: idM10, Addr: "10.0.0.10:2377"},
			},
			Cluster: &swarm.ClusterInfo{ID: "CLUSTER-ID"},
		},
	}
}

func newClusterAPI(t *testing.T) *fakeAPI {
	f := newFakeAPI(t)
	f.reply("GET /nodes", http.StatusOK, clusterNodes())
	f.reply("GET /info", http.StatusOK, managerInfo())
	return f
}

func TestNodeLsTable(t *testing.T) {
	f := newClusterAPI(t)
	r := mustRun(t, f.host, "node", "ls")
	want := "" +
		"ID                            HOSTNAME     STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n" +
		"1a2b3c4d5e6f7g8h9i0jklmno *   manager-1    Ready     Active         Leader           27.1.0\n" +
		"2bcdefghijklmnopqrstuvwxy     manager-2    Ready     Active         Reachable        27.1.0\n" +
		"3cdefghijklmnopqrstuvwxyz     manager-10   Down      Pause          Unreachable      27.0.3\n" +
		"4defghijklmnopqrstuvwxyza     worker-2     Ready     Drain                           27.1.0\n" +
		"5efghijklmnopqrstuvwxyzab     worker-10    Ready     Active                          27.1.0\n"
	if r.stdout != want {
		t.Errorf("node ls printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	if r.stderr != "" {
		t.Errorf("stderr: %q", r.stderr)
	}
	for _, req := range f.allRequests() {
		if req.Path != "/_ping" && req.Version != fakeAPIVersion {
			t.Errorf("%s %s used API version %q, want the negotiated %s", req.Method, req.Path, req.Version, fakeAPIVersion)
		}
	}
	if got := f.routesCalled(); !slices.Equal(got, []string{"GET /nodes", "GET /info"}) {
		t.Errorf("requests = %v", got)
	}
}

func TestNodeLsAliasAndEmpty(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /nodes", http.StatusOK, []swarm.Node{})
	r := mustRun(t, f.host, "node", "list")
	want := "ID        HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n"
	if r.stdout != want {
		t.Errorf("empty node ls printed %q, want %q", r.stdout, want)
	}
}

func TestNodeLsQuiet(t *testing.T) {
	f := newClusterAPI(t)
	r := mustRun(t, f.host, "node", "ls", "-q")
	want := strings.Join([]string{idM1, idM2, idM10, idW2, idW10}, "\n") + "\n"
	if r.stdout != want {
		t.Errorf("node ls -q printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	if got := f.routesCalled(); !slices.Equal(got, []string{"GET /nodes"}) {
		t.Errorf("node ls -q should only list nodes; requests = %v", got)
	}
}

func TestNodeLsFormat(t *testing.T) {
	f := newClusterAPI(t)

	r := mustRun(t, f.host, "node", "ls", "--format", "{{.Hostname}} self={{.Self}} {{.Status}}/{{.Availability}}/{{.ManagerStatus}}")
	want := "manager-1 self=true Ready/Active/Leader\n" +
		"manager-2 self=false Ready/Active/Reachable\n" +
		"manager-10 self=false Down/Pause/Unreachable\n" +
		"worker-2 self=false Ready/Drain/\n" +
		"worker-10 self=false Ready/Active/\n"
	if r.stdout != want {
		t.Errorf("custom format printed:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = mustRun(t, f.host, "node", "ls", "--format", `table {{.Hostname}}\t{{.ManagerStatus}}\t{{.TLSStatus}}`)
	want = "HOSTNAME     MANAGER STATUS   TLS STATUS\n" +
		"manager-1    Leader           Unknown\n" +
		"manager-2    Reachable        Unknown\n" +
		"manager-10   Unreachable      Unknown\n" +
		"worker-2                      Unknown\n" +
		"worker-10                     Unknown\n"
	if r.stdout != want {
		t.Errorf("table format printed:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = mustRun(t, f.host, "node", "ls", "--format", "{{.ID}}: {{upper .Hostname}} {{json .EngineVersion}}")
	if first := strings.SplitN(r.stdout, "\n", 2)[0]; first != idM1+`: MANAGER-1 "27.1.0"` {
		t.Errorf("template functions: first line %q", first)
	}

	for _, format := range []string{"json", "{{json .}}"} {
		r = mustRun(t, f.host, "node", "ls", "--format", format)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		if len(lines) != 5 {
			t.Fatalf("--format %s: %d lines:\n%s", format, len(lines), r.stdout)
		}
		wantFirst := `{"Availability":"Active","EngineVersion":"27.1.0","Hostname":"manager-1","ID":"` + idM1 +
			`","ManagerStatus":"Leader","Self":true,"Status":"Ready","TLSStatus":"Unknown"}`
		if lines[0] != wantFirst {
			t.Errorf("--format %s first line:\n%s\nwant:\n%s", format, lines[0], wantFirst)
		}
	}

	r = run(t, f.host, "node", "ls", "--format", "{{.Nope")
	if r.err == nil || !strings.Contains(r.stderr, "template parsing error") {
		t.Errorf("bad template: err=%v stderr=%q", r.err, r.stderr)
	}
}

func TestNodeLsFiltersReachServer(t *testing.T) {
	f := newClusterAPI(t)
	mustRun(t, f.host, "node", "ls", "-f", "role=manager", "--filter", "node.label=zone=a", "--filter", "membership=accepted", "-f", "name=manager-1", "-q")
	reqs := f.only("GET", "/nodes")
	if len(reqs) != 1 {
		t.Fatalf("GET /nodes called %d times", len(reqs))
	}
	var got map[string]map[string]bool
	if err := json.Unmarshal([]byte(reqs[0].Query.Get("filters")), &got); err != nil {
		t.Fatalf("filters query %q: %v", reqs[0].Query.Get("filters"), err)
	}
	want := map[string]map[string]bool{
		"role":       {"manager": true},
		"node.label": {"zone=a": true},
		"membership": {"accepted": true},
		"name":       {"manager-1": true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("filters sent = %v, want %v", got, want)
	}

	f2 := newClusterAPI(t)
	r := run(t, f2.host, "node", "ls", "--filter", "justakey")
	if r.err == nil || !strings.Contains(r.stderr, `bad format of filter "justakey" (expected name=value)`) {
		t.Errorf("bad filter: err=%v stderr=%q", r.err, r.stderr)
	}
	if n := len(f2.allRequests()); n != 0 {
		t.Errorf("bad filter still made %d requests", n)
	}
}

func TestNodeInspect(t *testing.T) {
	f := newClusterAPI(t)
	nodes := map[string]swarm.Node{}
	for _, n := range clusterNodes() {
		nodes[n.ID] = n
		n := n
		f.reply("GET /nodes/"+n.ID, http.StatusOK, n)
	}

	r := mustRun(t, f.host, "node", "inspect", "self", idW2)
	b, _ := json.MarshalIndent([]swarm.Node{nodes[idM1], nodes[idW2]}, "", "    ")
	if want := string(b) + "\n"; r.stdout != want {
		t.Errorf("node inspect printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	if got := f.routesCalled(); !slices.Equal(got, []string{"GET /info", "GET /nodes/" + idM1, "GET /nodes/" + idW2}) {
		t.Errorf("requests = %v", got)
	}

	r = mustRun(t, f.host, "node", "inspect", "--format", "{{.ID}} {{.Description.Hostname}} {{.Spec.Role}}", idM2, idW10)
	if want := idM2 + " manager-2 manager\n" + idW10 + " worker-10 worker\n"; r.stdout != want {
		t.Errorf("node inspect --format printed %q, want %q", r.stdout, want)
	}

	r = mustRun(t, f.host, "node", "inspect", "--pretty", "self")
	for _, want := range []string{"ID:                   " + idM1 + "\n", "Hostname:             manager-1\n",
		"Status:\n State:               Ready\n Availability:        Active\n",
		"Manager Status:\n Address:             10.0.0.1:2377\n Raft Status:         Reachable\n Leader:              Yes\n",
		"Engine Version:       27.1.0\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("node inspect --pretty lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestNodeInspectMissingIsDockerStyleError(t *testing.T) {
	f := newClusterAPI(t)
	f.fail("GET /nodes/nope", http.StatusNotFound, "node nope not found")
	r := run(t, f.host, "node", "inspect", "nope")
	if r.err == nil {
		t.Fatal("inspecting a missing node succeeded")
	}
	if r.stdout != "[]\n" {
		t.Errorf("stdout = %q, want %q", r.stdout, "[]\n")
	}
	if want := "Error response from daemon: node nope not found\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestNodeLsOnWorkerIsDockerStyleError(t *testing.T) {
	f := newFakeAPI(t)
	const msg = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."
	f.fail("GET /nodes", http.StatusServiceUnavailable, msg)
	r := run(t, f.host, "node", "ls")
	if r.err == nil {
		t.Fatal("node ls succeeded")
	}
	if want := "Error response from daemon: " + msg + "\n"; r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q", r.stdout)
	}
}

// nodeForUpdate is a worker at version 42 with two labels.
func nodeForUpdate() swarm.Node {
	n := node(idW2, "worker-2", swarm.NodeRoleWorker, swarm.NodeStateReady, swarm.NodeAvailabilityActive, "27.1.0", nil)
	n.Version.Index = 42
	n.Spec.Name = "w2"
	n.Spec.Labels = map[string]string{"old": "x", "keep": "1"}
	return n
}

func TestNodeUpdateSendsSpecWithVersion(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /nodes/worker-2", http.StatusOK, nodeForUpdate())
	f.reply("POST /nodes/"+idW2+"/update", http.StatusOK, nil)

	r := mustRun(t, f.host, "node", "update", "--availability", "drain", "--label-add", "zone=a", "--label-add", "ssd", "--label-rm", "old", "worker-2")
	if r.stdout != "worker-2\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	ups := f.only("POST", "/nodes/"+idW2+"/update")
	if len(ups) != 1 {
		t.Fatalf("requests = %v", f.routesCalled())
	}
	if v := ups[0].Query.Get("version"); v != "42" {
		t.Errorf("version = %q, want 42", v)
	}
	got := decodeBody[swarm.NodeSpec](t, ups[0])
	want := swarm.NodeSpec{
		Annotations:  swarm.Annotations{Name: "w2", Labels: map[string]string{"keep": "1", "zone": "a", "ssd": ""}},
		Role:         swarm.NodeRoleWorker,
		Availability: swarm.NodeAvailabilityDrain,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec sent = %+v, want %+v", got, want)
	}

	mustRun(t, f.host, "node", "update", "--role", "manager", "worker-2")
	ups = f.only("POST", "/nodes/"+idW2+"/update")
	if got := decodeBody[swarm.NodeSpec](t, ups[len(ups)-1]); got.Role != swarm.NodeRoleManager || got.Availability != swarm.NodeAvailabilityActive {
		t.Errorf("--role manager sent %+v", got)
	}
}

func TestNodeUpdateRejectsBadValuesWithoutRequests(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /nodes/worker-2", http.StatusOK, nodeForUpdate())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--availability", "sleepy"}, `invalid availability "sleepy": must be one of active, pause, drain`},
		{[]string{"--role", "boss"}, `invalid role "boss": must be worker or manager`},
	} {
		r := run(t, f.host, append(append([]string{"node", "update"}, tc.args...), "worker-2")...)
		if r.err == nil {
			t.Errorf("node update %v succeeded", tc.args)
		}
		if r.stderr != tc.want+"\n" {
			t.Errorf("node update %v: stderr = %q, want %q", tc.args, r.stderr, tc.want+"\n")
		}
	}
	if reqs := f.allRequests(); len(reqs) != 0 {
		t.Errorf("bad values still reached the daemon: %d requests", len(reqs))
	}

	// A label to remove that the node lacks: read, but nothing written.
	r := run(t, f.host, "node", "update", "--label-rm", "ghost", "worker-2")
	if r.err == nil || r.stderr != "key ghost doesn't exist in node's labels\n" {
		t.Errorf("label-rm of a missing key: err=%v stderr=%q", r.err, r.stderr)
	}
	if got := f.routesCalled(); !slices.Equal(got, []string{"GET /nodes/worker-2"}) {
		t.Errorf("requests = %v", got)
	}
}

func TestNodePromoteDemote(t *testing.T) {
	for _, tc := range []struct {
		managers int
		warnings []string
	}{
		{3, nil},
		{4, []string{"even number of managers does not add fault tolerance"}},
		{9, []string{"More than 7 managers"}},
		{8, []string{"even number of managers does not add fault tolerance", "More than 7 managers"}},
	} {
		f := newFakeAPI(t)
		f.reply("GET /nodes/worker-2", http.StatusOK, nodeForUpdate())
		f.reply("POST /nodes/"+idW2+"/update", http.StatusOK, nil)
		info := managerInfo()
		info.Swarm.Managers = tc.managers
		f.reply("GET /info", http.StatusOK, info)

		r := mustRun(t, f.host, "node", "promote", "worker-2")
		if r.stdout != "Node worker-2 promoted to a manager in the swarm.\n" {
			t.Errorf("stdout = %q", r.stdout)
		}
		ups := f.only("POST", "/nodes/"+idW2+"/update")
		if len(ups) != 1 || ups[0].Query.Get("version") != "42" || decodeBody[swarm.NodeSpec](t, ups[0]).Role != swarm.NodeRoleManager {
			t.Errorf("promote sent %v", ups)
		}
		if len(tc.warnings) == 0 && r.stderr != "" {
			t.Errorf("%d managers: unexpected warning %q", tc.managers, r.stderr)
		}
		for _, w := range tc.warnings {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%d managers: stderr %q lacks %q", tc.managers, r.stderr, w)
			}
		}
	}

	f := newFakeAPI(t)
	m := node(idM2, "manager-2", swarm.NodeRoleManager, swarm.NodeStateReady, swarm.NodeAvailabilityActive, "27.1.0", &swarm.ManagerStatus{})
	f.reply("GET /nodes/manager-2", http.StatusOK, m)
	f.reply("GET /nodes/worker-2", http.StatusOK, nodeForUpdate())
	f.reply("POST /nodes/"+idM2+"/update", http.StatusOK, nil)
	r := mustRun(t, f.host, "node", "demote", "manager-2", "worker-2")
	if want := "Manager manager-2 demoted in the swarm.\nNode " + idW2 + " is already a worker.\n"; r.stdout != want {
		t.Errorf("demote printed %q, want %q", r.stdout, want)
	}
	ups := f.only("POST", "/nodes/"+idM2+"/update")
	if len(ups) != 1 || decodeBody[swarm.NodeSpec](t, ups[0]).Role != swarm.NodeRoleWorker {
		t.Errorf("demote sent %v", f.routesCalled())
	}
}

func TestNodeRm(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("DELETE /nodes/a", http.StatusOK, nil)
	f.fail("DELETE /nodes/b", http.StatusNotFound, "node b not found")
	r := run(t, f.host, "node", "rm", "--force", "a", "b")
	if r.err == nil {
		t.Error("removing a missing node succeeded")
	}
	if r.stdout != "a\n" || r.stderr != "Error response from daemon: node b not found\n" {
		t.Errorf("stdout=%q stderr=%q", r.stdout, r.stderr)
	}
	if q := f.only("DELETE", "/nodes/a"); len(q) != 1 || q[0].Query.Get("force") != "1" {
		t.Errorf("force not sent: %v", q)
	}
}
