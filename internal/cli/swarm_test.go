package cli_test

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func testSwarm() swarm.Swarm {
	limit := int64(5)
	var sw swarm.Swarm
	sw.ID = "CLUSTER-ID"
	sw.Version.Index = 7
	sw.Spec.Name = "default"
	sw.Spec.Orchestration.TaskHistoryRetentionLimit = &limit
	sw.Spec.Raft = swarm.RaftConfig{SnapshotInterval: 10000, ElectionTick: 10, HeartbeatTick: 1}
	sw.Spec.Dispatcher.HeartbeatPeriod = 5 * time.Second
	sw.Spec.CAConfig.NodeCertExpiry = 90 * 24 * time.Hour
	sw.JoinTokens = swarm.JoinTokens{Worker: "SWMTKN-1-worker", Manager: "SWMTKN-1-manager"}
	return sw
}

func TestSwarmInit(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("POST /swarm/init", http.StatusOK, idM1)
	f.reply("GET /swarm", http.StatusOK, testSwarm())
	info := managerInfo()
	f.reply("GET /info", http.StatusOK, info)

	r := mustRun(t, f.host, "swarm", "init", "--advertise-addr", "10.0.0.1", "--listen-addr", "10.0.0.1", "--availability", "drain", "--task-history-limit", "3")
	want := "Swarm initialized: current node (" + idM1 + ") is now a manager.\n\n" +
		"To add a worker to this swarm, run the following command:\n\n" +
		"    flotilla swarm join --token SWMTKN-1-worker 10.0.0.1:2377\n\n" +
		"To add a manager to this swarm, run 'flotilla swarm join-token manager' and follow the instructions.\n"
	if r.stdout != want {
		t.Errorf("swarm init printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	reqs := f.only("POST", "/swarm/init")
	if len(reqs) != 1 {
		t.Fatalf("requests: %v", f.routesCalled())
	}
	got := decodeBody[swarm.InitRequest](t, reqs[0])
	if got.ListenAddr != "10.0.0.1:2377" || got.AdvertiseAddr != "10.0.0.1" || got.Availability != swarm.NodeAvailabilityDrain {
		t.Errorf("init request = %+v", got)
	}
	if l := got.Spec.Orchestration.TaskHistoryRetentionLimit; l == nil || *l != 3 {
		t.Errorf("task history limit not sent: %+v", got.Spec.Orchestration)
	}
	if got.Spec.Dispatcher.HeartbeatPeriod != 0 {
		t.Errorf("flags left at their default must not be sent: %+v", got.Spec.Dispatcher)
	}

	// Without its own RemoteManagers entry, the node address and the
	// default port are used.
	info.Swarm.RemoteManagers = nil
	info.Swarm.NodeAddr = "192.168.1.5"
	f.reply("GET /info", http.StatusOK, info)
	r = mustRun(t, f.host, "swarm", "init")
	if !strings.Contains(r.stdout, "    flotilla swarm join --token SWMTKN-1-worker 192.168.1.5:2377\n") {
		t.Errorf("swarm init printed:\n%s", r.stdout)
	}
	reqs = f.only("POST", "/swarm/init")
	if got := decodeBody[swarm.InitRequest](t, reqs[1]); got.ListenAddr != "0.0.0.0:2377" || got.Availability != "" {
		t.Errorf("default init request = %+v", got)
	}
}

func TestSwarmInitError(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("POST /swarm/init", http.StatusServiceUnavailable, `This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.`)
	r := run(t, f.host, "swarm", "init")
	want := "Error response from daemon: This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.\n"
	if r.err == nil || r.stderr != want || r.stdout != "" {
		t.Errorf("err=%v stdout=%q stderr=%q", r.err, r.stdout, r.stderr)
	}
}

func TestSwarmJoinSendsEveryAddress(t *testing.T) {
	for _, tc := range []struct {
		manager bool
		want    string
	}{
		{false, "This node joined a swarm as a worker.\n"},
		{true, "This node joined a swarm as a manager.\n"},
	} {
		f := newFakeAPI(t)
		f.reply("POST /swarm/join", http.StatusOK, nil)
		info := managerInfo()
		info.Swarm.ControlAvailable = tc.manager
		f.reply("GET /info", http.StatusOK, info)

		r := mustRun(t, f.host, "swarm", "join", "--token", "SWMTKN-1-abc", "--advertise-addr", "10.0.0.9",
			"10.0.0.1:2377,10.0.0.2", "10.0.0.3:4000", " 10.0.0.4:2377 , ")
		if r.stdout != tc.want {
			t.Errorf("stdout = %q, want %q", r.stdout, tc.want)
		}
		reqs := f.only("POST", "/swarm/join")
		if len(reqs) != 1 {
			t.Fatalf("requests: %v", f.routesCalled())
		}
		got := decodeBody[swarm.JoinRequest](t, reqs[0])
		want := swarm.JoinRequest{
			ListenAddr:    "0.0.0.0:2377",
			AdvertiseAddr: "10.0.0.9",
			RemoteAddrs:   []string{"10.0.0.1:2377", "10.0.0.2:2377", "10.0.0.3:4000", "10.0.0.4:2377"},
			JoinToken:     "SWMTKN-1-abc",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("join request = %+v\nwant %+v", got, want)
		}
	}
}

func TestSwarmJoinToken(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /swarm", http.StatusOK, testSwarm())
	f.reply("GET /info", http.StatusOK, managerInfo())

	r := mustRun(t, f.host, "swarm", "join-token", "-q", "worker")
	if r.stdout != "SWMTKN-1-worker\n" {
		t.Errorf("join-token -q worker printed %q", r.stdout)
	}
	if got := f.routesCalled(); !slices.Equal(got, []string{"GET /swarm"}) {
		t.Errorf("join-token -q requests = %v", got)
	}

	r = mustRun(t, f.host, "swarm", "join-token", "manager")
	want := "To add a manager to this swarm, run the following command:\n\n" +
		"    flotilla swarm join --token SWMTKN-1-manager 10.0.0.1:2377\n\n"
	if r.stdout != want {
		t.Errorf("join-token manager printed:\n%s\nwant:\n%s", r.stdout, want)
	}

	r = run(t, f.host, "swarm", "join-token", "boss")
	if r.err == nil || !strings.Contains(r.stderr, "unknown role boss") {
		t.Errorf("bad role: err=%v stderr=%q", r.err, r.stderr)
	}
}

func TestSwarmJoinTokenRotate(t *testing.T) {
	f := newFakeAPI(t)
	var mu sync.Mutex
	sw := testSwarm()
	f.handle("GET /swarm", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		writeJSON(w, http.StatusOK, sw)
	})
	f.handle("POST /swarm/update", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Query().Get("rotateWorkerToken") == "true" {
			sw.JoinTokens.Worker = "SWMTKN-1-worker-rotated"
			sw.Version.Index++
		}
		writeJSON(w, http.StatusOK, nil)
	})
	f.reply("GET /info", http.StatusOK, managerInfo())

	r := mustRun(t, f.host, "swarm", "join-token", "--rotate", "worker")
	want := "Successfully rotated worker join token.\n\n" +
		"To add a worker to this swarm, run the following command:\n\n" +
		"    flotilla swarm join --token SWMTKN-1-worker-rotated 10.0.0.1:2377\n\n"
	if r.stdout != want {
		t.Errorf("join-token --rotate printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	ups := f.only("POST", "/swarm/update")
	if len(ups) != 1 {
		t.Fatalf("requests = %v", f.routesCalled())
	}
	q := ups[0].Query
	if q.Get("version") != "7" || q.Get("rotateWorkerToken") != "true" || q.Get("rotateManagerToken") != "false" {
		t.Errorf("rotate query = %v", q)
	}
	if got := decodeBody[swarm.Spec](t, ups[0]); !reflect.DeepEqual(got, testSwarm().Spec) {
		t.Errorf("rotate must send the spec unchanged; got %+v", got)
	}

	r = mustRun(t, f.host, "swarm", "join-token", "--rotate", "-q", "worker")
	if r.stdout != "SWMTKN-1-worker-rotated\n" {
		t.Errorf("join-token --rotate -q printed %q", r.stdout)
	}
	if ups := f.only("POST", "/swarm/update"); ups[len(ups)-1].Query.Get("version") != "8" {
		t.Errorf("second rotation used version %q, want the one just read (8)", ups[len(ups)-1].Query.Get("version"))
	}
}

func TestSwarmLeave(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("POST /swarm/leave", http.StatusOK, nil)
	r := mustRun(t, f.host, "swarm", "leave", "--force")
	if r.stdout != "Node left the swarm.\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	if q := f.only("POST", "/swarm/leave"); len(q) != 1 || q[0].Query.Get("force") != "1" {
		t.Errorf("leave requests = %v", q)
	}
}

func TestSwarmUpdateReadModifyWrite(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /swarm", http.StatusOK, testSwarm())
	f.reply("POST /swarm/update", http.StatusOK, nil)

	r := mustRun(t, f.host, "swarm", "update", "--task-history-limit", "10", "--dispatcher-heartbeat", "10s", "--cert-expiry", "48h")
	if r.stdout != "Swarm updated.\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	ups := f.only("POST", "/swarm/update")
	if len(ups) != 1 {
		t.Fatalf("requests = %v", f.routesCalled())
	}
	if q := ups[0].Query; q.Get("version") != "7" || q.Get("rotateWorkerToken") != "false" {
		t.Errorf("update query = %v", q)
	}
	want := testSwarm().Spec
	limit := int64(10)
	want.Orchestration.TaskHistoryRetentionLimit = &limit
	want.Dispatcher.HeartbeatPeriod = 10 * time.Second
	want.CAConfig.NodeCertExpiry = 48 * time.Hour
	if got := decodeBody[swarm.Spec](t, ups[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("spec sent = %+v\nwant %+v", got, want)
	}

	// Nothing to change: usage, and no request.
	f2 := newFakeAPI(t)
	r = mustRun(t, f2.host, "swarm", "update")
	if !strings.Contains(r.stdout, "Usage:") || len(f2.allRequests()) != 0 {
		t.Errorf("swarm update without flags: stdout=%q requests=%d", r.stdout, len(f2.allRequests()))
	}
}

// --node-down-removal travels as a spec label next to the user's labels;
// a negative period is refused before any request.
func TestSwarmUpdateNodeDownRemoval(t *testing.T) {
	f := newFakeAPI(t)
	sw := testSwarm()
	sw.Spec.Labels = map[string]string{"team": "ops"}
	f.reply("GET /swarm", http.StatusOK, sw)
	f.reply("POST /swarm/update", http.StatusOK, nil)
	mustRun(t, f.host, "swarm", "update", "--node-down-removal", "10m")
	ups := f.only("POST", "/swarm/update")
	if len(ups) != 1 {
		t.Fatalf("requests = %v", f.routesCalled())
	}
	got := decodeBody[swarm.Spec](t, ups[0]).Labels
	if want := map[string]string{"team": "ops", "flotilla.node-down-removal": "10m0s"}; !reflect.DeepEqual(got, want) {
		t.Errorf("labels sent = %v, want %v", got, want)
	}

	f2 := newFakeAPI(t)
	r := run(t, f2.host, "swarm", "update", "--node-down-removal", "-5s")
	if r.err == nil || !strings.Contains(r.stderr, "--node-down-removal") || len(f2.allRequests()) != 0 {
		t.Errorf("negative period: err=%v stderr=%q requests=%d", r.err, r.stderr, len(f2.allRequests()))
	}
}
