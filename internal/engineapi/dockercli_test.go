package engineapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// The docker CLI, run against the handler on a unix socket. DOCKER_HOST is
// set in the environment of each docker command only, with an empty
// DOCKER_CONFIG, so the machine's own engine and configuration are never
// used.

// cliServer serves a Backend to the docker CLI and logs the requests.
type cliServer struct {
	t    *testing.T
	host string // DOCKER_HOST
	cfg  string // DOCKER_CONFIG

	mu       sync.Mutex
	requests []string
}

func startCLIServer(t *testing.T, b Backend) *cliServer {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 80 { // unix socket paths are limited to about 108 bytes
		var err error
		if dir, err = os.MkdirTemp("", "fl"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	sock := filepath.Join(dir, "flotilla.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &cliServer{t: t, host: "unix://" + sock, cfg: t.TempDir()}
	h := NewHandler(b)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.requests = append(s.requests, r.Method+" "+r.URL.RequestURI())
			s.mu.Unlock()
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// docker runs the docker CLI with args and returns its output; err is
// non-nil when it exits with an error. The requests it made are logged.
func (s *cliServer) docker(args ...string) (stdout, stderr string, err error) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	env := []string{"DOCKER_HOST=" + s.host, "DOCKER_CONFIG=" + s.cfg, "DOCKER_CLI_HINTS=false"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	s.mu.Lock()
	s.requests = nil
	s.mu.Unlock()
	err = cmd.Run()
	if ctx.Err() != nil {
		s.t.Fatalf("docker %s: timed out", strings.Join(args, " "))
	}
	s.mu.Lock()
	reqs := slices.Clone(s.requests)
	s.mu.Unlock()
	s.t.Logf("docker %s → exit %v\n  requests: %s\n  stdout: %s\n  stderr: %s", strings.Join(args, " "), err, strings.Join(reqs, ", "), out.String(), errb.String())
	return out.String(), errb.String(), err
}

// ok runs docker and fails the test if it exits with an error.
func (s *cliServer) ok(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.docker(args...)
	if err != nil {
		s.t.Fatalf("docker %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// fails runs docker, expects it to exit with an error and returns stderr.
func (s *cliServer) fails(args ...string) string {
	s.t.Helper()
	_, errOut, err := s.docker(args...)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		s.t.Fatalf("docker %s: want a failing exit, got %v", strings.Join(args, " "), err)
	}
	return errOut
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func lines(s string) []string {
	return strings.Fields(strings.TrimSpace(s))
}

func needDocker(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("skipping: the docker CLI is not on PATH")
	}
}

func TestDockerCLIManager(t *testing.T) {
	needDocker(t)
	f := newFakeCluster()
	s := startCLIServer(t, f)

	t.Run("info", func(t *testing.T) {
		out, errOut, err := s.docker("info")
		if err != nil {
			t.Fatalf("docker info: %v\n%s", err, errOut)
		}
		if strings.Contains(errOut, "ERROR") {
			t.Errorf("docker info reported errors:\n%s", errOut)
		}
		wantContains(t, "docker info", out,
			"Server Version: 0.1.0", "Storage Driver: flotilla", "Swarm: active", "NodeID: "+idA, "Is Manager: true",
			"ClusterID: clusterid0123456789abcdef", "Managers: 1", "Nodes: 3", "Task History Retention Limit: 5",
			"Node Address: 10.0.0.1", "Manager Addresses:", "OSType: linux", "Name: node-a", "ID: "+idA)
		var info map[string]any
		if err := json.Unmarshal([]byte(s.ok("info", "--format", "{{json .}}")), &info); err != nil {
			t.Errorf("docker info --format json: %v", err)
		}
	})
	t.Run("version", func(t *testing.T) {
		out := s.ok("version")
		wantContains(t, "docker version", out, "Server: flotilla", "Engine:", "Version:          0.1.0", "API version:      1.47 (minimum version 1.24)")
		// The client API version is the lower of ours and the CLI's own
		// maximum (docker 28: 1.50 → 1.47; docker 20.10: 1.41).
		got := strings.Fields(s.ok("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Client.APIVersion}}"))
		if len(got) != 3 || got[0] != "0.1.0" || got[1] != "1.47" || compareVersions(got[2], APIVersion) > 0 || compareVersions(got[2], MinAPIVersion) < 0 {
			t.Errorf("version = %q", got)
		}
	})
	t.Run("node ls", func(t *testing.T) {
		out := s.ok("node", "ls")
		rows := strings.Split(strings.TrimSpace(out), "\n")
		if len(rows) != 4 {
			t.Fatalf("want a header and 3 rows:\n%s", out)
		}
		wantContains(t, "self row", rows[1], idA+" *", "node-a", "Ready", "Active", "Leader", "0.1.0")
		wantContains(t, "node-b row", rows[2], idB, "node-b", "Ready", "Active")
		if got := lines(s.ok("node", "ls", "-q", "--filter", "role=manager")); !slices.Equal(got, []string{idA}) {
			t.Errorf("role=manager: %q", got)
		}
		if got := lines(s.ok("node", "ls", "--format", "{{.Hostname}}", "--filter", "node.label=zone=east")); !slices.Equal(got, []string{"node-a", "node-c"}) {
			t.Errorf("node.label=zone=east: %q", got)
		}
		if got := lines(s.ok("node", "ls", "--format", "{{.Hostname}}", "--filter", "name=node-b", "--filter", "name=node-c")); !slices.Equal(got, []string{"node-b", "node-c"}) {
			t.Errorf("name filters: %q", got)
		}
		wantContains(t, "unknown filter", s.fails("node", "ls", "--filter", "colour=red"), "invalid filter 'colour'")
	})
	t.Run("node inspect", func(t *testing.T) {
		if got := strings.TrimSpace(s.ok("node", "inspect", "node-b", "--format", "{{.ID}} {{.Spec.Role}} {{.Description.Hostname}}")); got != idB+" worker node-b" {
			t.Errorf("inspect node-b = %q", got)
		}
		if got := strings.TrimSpace(s.ok("node", "inspect", "self", "--format", "{{.ID}}")); got != idA {
			t.Errorf("inspect self = %q", got)
		}
		if got := strings.TrimSpace(s.ok("node", "inspect", "b7x9", "--format", "{{.Description.Hostname}}")); got != "node-c" {
			t.Errorf("inspect by prefix = %q", got)
		}
		wantContains(t, "inspect --pretty", s.ok("node", "inspect", "--pretty", "node-a"), "Hostname:", "node-a", "Leader:", "true")
		wantContains(t, "inspect nosuch", s.fails("node", "inspect", "nosuch"), "nosuch")
		wantContains(t, "inspect ambiguous", s.fails("node", "inspect", "b7x"), "node b7x is ambiguous (2 matches found)")
	})
	t.Run("node update", func(t *testing.T) {
		if got := strings.TrimSpace(s.ok("node", "update", "--availability", "drain", "node-b")); got != "node-b" {
			t.Errorf("output = %q", got)
		}
		calls := f.recorded().nodeUpdates
		if len(calls) != 1 {
			t.Fatalf("NodeUpdate calls: %+v", calls)
		}
		if c := calls[0]; c.ID != idB || c.Version != 11 || c.Spec.Availability != swarm.NodeAvailabilityDrain ||
			c.Spec.Role != swarm.NodeRoleWorker || c.Spec.Labels["zone"] != "west" {
			t.Errorf("NodeUpdate = %+v", c)
		}
		s.ok("node", "update", "--label-add", "foo=bar", "node-c")
		if l := f.node(idC).Spec.Labels; l["foo"] != "bar" || l["zone"] != "east" {
			t.Errorf("labels of node-c = %v", l)
		}
	})
	t.Run("promote and demote", func(t *testing.T) {
		wantContains(t, "promote", s.ok("node", "promote", "node-c"), "Node node-c promoted to a manager in the swarm.")
		if got := f.node(idC).Spec.Role; got != swarm.NodeRoleManager {
			t.Errorf("role after promote = %s", got)
		}
		wantContains(t, "demote", s.ok("node", "demote", "node-c"), "Manager node-c demoted in the swarm.")
		if got := f.node(idC).Spec.Role; got != swarm.NodeRoleWorker {
			t.Errorf("role after demote = %s", got)
		}
	})
	t.Run("join-token", func(t *testing.T) {
		wantContains(t, "join-token worker", s.ok("swarm", "join-token", "worker"),
			"To add a worker to this swarm, run the following command:", "docker swarm join --token SWMTKN-1-worker-0 10.0.0.1:2377")
		if got := strings.TrimSpace(s.ok("swarm", "join-token", "-q", "manager")); got != "SWMTKN-1-manager-0" {
			t.Errorf("manager token = %q", got)
		}
		before := len(f.recorded().swarmUpdates)
		rotated := strings.TrimSpace(s.ok("swarm", "join-token", "--rotate", "-q", "worker"))
		calls := f.recorded().swarmUpdates[before:]
		if len(calls) != 1 || !calls[0].Flags.RotateWorkerToken || calls[0].Flags.RotateManagerToken || calls[0].Version != 7 {
			t.Fatalf("SwarmUpdate calls: %+v", calls)
		}
		if rotated != "SWMTKN-1-worker-8" {
			t.Errorf("rotated token = %q", rotated)
		}
	})
	t.Run("swarm update", func(t *testing.T) {
		wantContains(t, "swarm update", s.ok("swarm", "update", "--task-history-limit", "3"), "Swarm updated.")
		calls := f.recorded().swarmUpdates
		c := calls[len(calls)-1]
		if l := c.Spec.Orchestration.TaskHistoryRetentionLimit; l == nil || *l != 3 {
			t.Errorf("TaskHistoryRetentionLimit = %v", l)
		}
		if c.Spec.Raft.SnapshotInterval != 10000 || c.Spec.Name != "default" || c.Flags != (SwarmUpdateFlags{}) {
			t.Errorf("the rest of the spec was not kept: %+v", c)
		}
		wantContains(t, "docker info", s.ok("info"), "Task History Retention Limit: 3")
	})
	t.Run("node rm", func(t *testing.T) {
		wantContains(t, "rm of a live node", s.fails("node", "rm", "node-b"), "is not down and can't be removed")
		if got := strings.TrimSpace(s.ok("node", "rm", "--force", "node-b")); got != "node-b" {
			t.Errorf("output = %q", got)
		}
		rm := f.recorded().nodeRemoves
		if len(rm) != 2 || rm[0] != (nodeRemoveCall{idB, false}) || rm[1] != (nodeRemoveCall{idB, true}) {
			t.Errorf("NodeRemove calls = %+v", rm)
		}
	})
	t.Run("swarm leave", func(t *testing.T) {
		wantContains(t, "leave", s.fails("swarm", "leave"), "participating as a manager")
		wantContains(t, "leave --force", s.ok("swarm", "leave", "--force"), "Node left the swarm.")
		if l := f.recorded().leaves; !slices.Equal(l, []bool{false, true}) {
			t.Errorf("SwarmLeave calls = %v", l)
		}
		wantContains(t, "docker info", s.ok("info"), "Swarm: inactive")
	})
}

func TestDockerCLIInitAndJoin(t *testing.T) {
	needDocker(t)
	t.Run("outside a swarm", func(t *testing.T) {
		s := startCLIServer(t, newInactiveBackend())
		wantContains(t, "docker info", s.ok("info"), "Swarm: inactive", "Name: lonely")
		wantContains(t, "node ls", s.fails("node", "ls"), "This node is not part of a swarm")
		wantContains(t, "join-token", s.fails("swarm", "join-token", "worker"), "This node is not part of a swarm")
	})
	t.Run("init", func(t *testing.T) {
		f := newInactiveBackend()
		s := startCLIServer(t, f)
		out := s.ok("swarm", "init", "--advertise-addr", "10.0.0.1", "--task-history-limit", "4", "--default-addr-pool", "10.20.0.0/16")
		wantContains(t, "swarm init", out, "Swarm initialized: current node ("+idA+") is now a manager.", "docker swarm join --token SWMTKN-1-worker-0 10.0.0.1:2377")
		inits := f.recorded().inits
		if len(inits) != 1 {
			t.Fatalf("SwarmInit calls: %+v", inits)
		}
		req := inits[0]
		if req.AdvertiseAddr != "10.0.0.1" || req.ListenAddr != "0.0.0.0:2377" || req.Spec.Orchestration.TaskHistoryRetentionLimit == nil ||
			*req.Spec.Orchestration.TaskHistoryRetentionLimit != 4 || len(req.DefaultAddrPool) != 1 || req.DefaultAddrPool[0].String() != "10.20.0.0/16" {
			t.Errorf("InitRequest = %+v", req)
		}
		wantContains(t, "second init", s.fails("swarm", "init"), "This node is already part of a swarm")
		if got := lines(s.ok("node", "ls", "-q")); !slices.Equal(got, []string{idA}) {
			t.Errorf("node ls = %q", got)
		}
	})
	t.Run("join", func(t *testing.T) {
		f := newInactiveBackend()
		s := startCLIServer(t, f)
		wantContains(t, "swarm join", s.ok("swarm", "join", "--token", "SWMTKN-1-x", "--availability", "pause", "10.0.0.1:2377"), "This node joined a swarm as a worker.")
		joins := f.recorded().joins
		if len(joins) != 1 || joins[0].JoinToken != "SWMTKN-1-x" || !slices.Equal(joins[0].RemoteAddrs, []string{"10.0.0.1:2377"}) ||
			joins[0].Availability != swarm.NodeAvailabilityPause {
			t.Errorf("JoinRequest = %+v", joins)
		}
		wantContains(t, "node ls on a worker", s.fails("node", "ls"), "This node is not a swarm manager.")
		wantContains(t, "docker info", s.ok("info"), "Swarm: active", "Is Manager: false")
		wantContains(t, "bad token", startCLIServer(t, newInactiveBackend()).fails("swarm", "join", "--token", "bad", "10.0.0.1:2377"), "invalid join token")
	})
}

// A follower hands node updates to the leader's handler through its
// LeaderProxy; the CLI sees the leader's answer.
func TestDockerCLILeaderProxy(t *testing.T) {
	needDocker(t)
	leader := newFakeCluster()
	follower := newFakeCluster()
	follower.proxy = NewHandler(leader)
	s := startCLIServer(t, follower)
	s.ok("node", "update", "--availability", "pause", "node-b")
	if got := leader.node(idB).Spec.Availability; got != swarm.NodeAvailabilityPause {
		t.Errorf("availability on the leader = %s", got)
	}
	if c := follower.recorded().nodeUpdates; len(c) != 0 {
		t.Errorf("the follower updated the node itself: %+v", c)
	}
	wantContains(t, "swarm update", s.ok("swarm", "update", "--cert-expiry", "720h"), "Swarm updated.")
	if c := leader.recorded().swarmUpdates; len(c) != 1 || c[0].Spec.CAConfig.NodeCertExpiry != 720*time.Hour {
		t.Errorf("leader SwarmUpdate calls = %+v", c)
	}
}
