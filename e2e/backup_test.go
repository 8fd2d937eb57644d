package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// clusterState is what a backup must bring back, read through the API.
type clusterState struct {
	services map[string]string // ID -> JSON of {Version, Spec}
	names    map[string]bool   // service names
	worker   string            // worker join token
	manager  string            // manager join token
	nodes    []string          // node IDs
	caRoot   string
	networks []string // ID, name and subnets of each network
}

func readState(t *testing.T, n *node) clusterState {
	t.Helper()
	get := func(path string, v any) {
		t.Helper()
		code, body, err := n.apiRequest(http.MethodGet, path, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s on %s: %d %v %s", path, n, code, err, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatal(err)
		}
	}
	st := clusterState{services: map[string]string{}, names: map[string]bool{}}
	var services []struct {
		ID      string
		Version json.RawMessage
		Spec    json.RawMessage
	}
	get("/services", &services)
	for _, s := range services {
		st.services[s.ID] = string(s.Version) + " " + string(s.Spec)
		var spec struct{ Name string }
		_ = json.Unmarshal(s.Spec, &spec)
		st.names[spec.Name] = true
	}
	var sw struct {
		JoinTokens struct{ Worker, Manager string }
		TLSInfo    struct{ TrustRoot string }
	}
	get("/swarm", &sw)
	st.worker, st.manager, st.caRoot = sw.JoinTokens.Worker, sw.JoinTokens.Manager, sw.TLSInfo.TrustRoot
	var nodes []struct{ ID string }
	get("/nodes", &nodes)
	for _, x := range nodes {
		st.nodes = append(st.nodes, x.ID)
	}
	slices.Sort(st.nodes)
	var nets []struct {
		ID, Name string
		IPAM     json.RawMessage
	}
	get("/networks", &nets)
	for _, x := range nets {
		st.networks = append(st.networks, x.ID+" "+x.Name+" "+string(x.IPAM))
	}
	slices.Sort(st.networks)
	return st
}

// postRaw sends a body as is (apiRequest would JSON-encode it).
func postRaw(n *node, path string, body []byte) (int, string, error) {
	c := http.Client{Timeout: cliTimeout, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", n.sock)
	}}}
	defer c.CloseIdleConnections()
	res, err := c.Post("http://flotilla"+path, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

func mustFail(t *testing.T, n *node, want string, args ...string) {
	t.Helper()
	_, stderr, err := n.CLI(args...)
	if err == nil {
		t.Fatalf("%s on %s succeeded", strings.Join(args, " "), n)
	}
	if !strings.Contains(stderr, want) {
		t.Fatalf("%s on %s: stderr %q does not say %q", strings.Join(args, " "), n, stderr, want)
	}
}

func inSwarmDir(n *node) bool {
	_, err := os.Stat(filepath.Join(n.dataDir, "swarm"))
	return err == nil
}

// Every manager is lost for good (killed, data dirs deleted). A backup
// taken earlier through a follower brings the swarm back on a fresh node
// at a lost manager's address: services (IDs, versions, specs), tokens, CA
// and nodes are as in the backup, the surviving worker reconnects by
// itself and its tasks keep running (same tasks, same processes), the lost
// managers show Down and are removed, and a new manager joins with the old
// manager token.
func TestBackupRestoreTotalLoss(t *testing.T) {
	c := newClusterArgs(t, 3, 1, "--no-docker")
	m1, m2, w1 := c.managers[0], c.managers[1], c.workers[0]
	for _, m := range c.managers {
		m1.mustCLI(t, "node", "update", "--availability", "drain", m.name)
	}
	m1.mustCLI(t, "service", "create", "--name", "keep", "--replicas", "2", "--driver", "process", "--detach", "/bin/sleep", "1000")
	m1.mustCLI(t, "service", "create", "--name", "idle", "--replicas", "0", "--driver", "process", "--detach", "/bin/true")
	m1.mustCLI(t, "service", "update", "--label-add", "tier=db", "--detach", "idle")
	m1.mustCLI(t, "network", "create", "--subnet", "10.50.0.0/24", "back")
	before := m1.waitRunning(t, "keep", 2, 30*time.Second, nodeNames(w1))
	procsBefore := serviceProcs("keep", w1)
	want := readState(t, m1)

	// Errors first: no file, a worker, an existing file.
	file := filepath.Join(c.base, "swarm.backup")
	mustFail(t, m2, "-o FILE", "swarm", "backup")
	mustFail(t, w1, "not a swarm manager", "swarm", "backup", "-o", file)
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a refused backup left a file")
	}
	out := m2.mustCLI(t, "swarm", "backup", "-o", file) // a follower: forwarded to the leader
	if !strings.Contains(out, "written to "+file) {
		t.Errorf("swarm backup printed %q", out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want 0600 (it holds the CA key)", err, fi.Mode())
	}
	mustFail(t, m2, "already exists", "swarm", "backup", "-o", file)
	m2.mustCLI(t, "swarm", "backup", "--force", "-o", file)

	for _, m := range c.managers {
		m.Kill9()
		if err := os.RemoveAll(m.dataDir); err != nil {
			t.Fatal(err)
		}
	}

	// A fresh node takes m1's address, which the worker knows.
	r := c.spare("r1")
	out = r.mustCLI(t, "swarm", "restore", "-i", file, "--listen-addr", m1.addr)
	if !strings.Contains(out, "is now its only manager") {
		t.Errorf("swarm restore printed %q", out)
	}
	got := readState(t, r)
	if fmt.Sprint(got.services) != fmt.Sprint(want.services) {
		t.Errorf("services differ after the restore:\n got %v\nwant %v", got.services, want.services)
	}
	if got.worker != want.worker || got.manager != want.manager || got.caRoot != want.caRoot {
		t.Error("join tokens or root CA differ after the restore")
	}
	if len(want.networks) != 2 || !slices.Equal(got.networks, want.networks) {
		t.Errorf("networks after the restore:\n got %v\nwant %v (ingress and back)", got.networks, want.networks)
	}
	for _, id := range want.nodes {
		if !slices.Contains(got.nodes, id) {
			t.Errorf("node %s is missing after the restore: %v", id, got.nodes)
		}
	}
	if len(got.nodes) != len(want.nodes)+1 {
		t.Errorf("want the backup's %d nodes and the restored one, got %v", len(want.nodes), got.nodes)
	}
	eventually(t, 30*time.Second, rowsMatch(r, func(rows map[string]nodeRow) error {
		for name, wantStatus := range map[string]string{"r1": "Ready", "w1": "Ready", "m1": "Down", "m2": "Down", "m3": "Down"} {
			if rows[name].Status != wantStatus {
				return fmt.Errorf("%s is %v, want %s", name, rows[name], wantStatus)
			}
		}
		return nil
	}))
	after := r.waitRunning(t, "keep", 2, 30*time.Second, nodeNames(w1))
	ids := func(rows []psRow) (out []string) {
		for _, x := range rows {
			out = append(out, x.ID)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(ids(before), ids(after)) {
		t.Errorf("the restore replaced tasks: before %v, after %v", before, after)
	}
	procsAfter := serviceProcs("keep", w1)
	if fmt.Sprint(procsAfter) != fmt.Sprint(procsBefore) {
		t.Errorf("task processes changed: before %v, after %v", procsBefore, procsAfter)
	}

	r.mustCLI(t, "node", "demote", "m1", "m2", "m3")
	r.mustCLI(t, "node", "rm", "m1", "m2", "m3")
	m4 := c.spare("m4")
	m4.mustCLI(t, "swarm", "join", "--token", want.manager, "--listen-addr", m4.addr, m1.addr)
	eventually(t, 30*time.Second, rowsMatch(r, func(rows map[string]nodeRow) error {
		if len(rows) != 3 || rows["m4"].ManagerStatus != "Reachable" {
			return fmt.Errorf("want r1, w1 and m4 (Reachable), got %v", rows)
		}
		return nil
	}))
	m4.mustCLI(t, "service", "update", "--label-add", "after=restore", "--detach", "idle")

	mustFail(t, r, "already in a swarm", "swarm", "restore", "-i", file)
}

// A backup taken through one manager while clients keep creating services
// through all three holds every create acknowledged before the backup
// started. Restoring it on a node whose daemon is killed midway (twice, at
// two points) leaves that node in no swarm, and the retry succeeds. A
// truncated or corrupt file is refused before anything changes.
func TestBackupUnderWritesAndInterruptedRestore(t *testing.T) {
	c := newClusterArgs(t, 3, 0, "--no-docker")
	var (
		mu    sync.Mutex
		acked = map[string]time.Time{}
		tried = map[string]bool{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for g, m := range c.managers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("s%d-%d", g, i)
				spec := map[string]any{
					"Name":         name,
					"TaskTemplate": map[string]any{"ContainerSpec": map[string]any{"Image": "/bin/true", "Labels": map[string]string{"com.flotilla.driver": "process"}}},
					"Mode":         map[string]any{"Replicated": map[string]any{"Replicas": 0}},
				}
				mu.Lock()
				tried[name] = true
				mu.Unlock()
				code, _, err := m.apiRequest(http.MethodPost, "/services/create", spec)
				if err == nil && code == http.StatusCreated {
					mu.Lock()
					acked[name] = time.Now()
					mu.Unlock()
				}
			}
		}()
	}
	// Let the writes get going, then back up in their midst.
	eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 30 {
			return fmt.Errorf("%d creates acknowledged so far", len(acked))
		}
		return nil
	})
	file := filepath.Join(c.base, "busy.backup")
	start := time.Now()
	c.managers[1].mustCLI(t, "swarm", "backup", "-o", file)
	took := time.Since(start)
	// Keep writing a little after the backup too.
	eventually(t, 20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, at := range acked {
			if at.After(start.Add(200 * time.Millisecond)) {
				return nil
			}
		}
		return fmt.Errorf("no create acknowledged after the backup yet")
	})
	close(stop)
	wg.Wait()

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := c.newNode("r")
	r.Start()
	// Bad files: refused by the CLI, and by the daemon itself.
	truncated := filepath.Join(c.base, "truncated.backup")
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(t, r, "truncated", "swarm", "restore", "-i", truncated)
	foreign := filepath.Join(c.base, "foreign.backup")
	if err := os.WriteFile(foreign, []byte("{\"not\": \"a backup\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustFail(t, r, "not a flotilla backup", "swarm", "init", "--force-new-cluster", "--from-backup", foreign)
	corrupt := bytes.Clone(data)
	corrupt[len(corrupt)/2] ^= 0xff
	code, body, err := postRaw(r, "/flotilla/swarm/restore?listenAddr="+r.addr, corrupt)
	if err != nil || code != http.StatusBadRequest || !strings.Contains(body, "checksum") {
		t.Fatalf("a corrupt backup posted to the daemon: %d %v %s", code, err, body)
	}
	if inSwarmDir(r) {
		t.Fatal("a refused restore left swarm state behind")
	}

	// Killed while building the new state, then just before moving it
	// into place: each time the node comes back in no swarm.
	for _, at := range []string{"staging", "before-rename"} {
		r.Stop()
		r.env = []string{"FLOTILLA_TEST_RESTORE_CRASH_AT=" + at}
		r.Start()
		if res := r.cliTimeout(cliTimeout, "swarm", "restore", "-i", file, "--listen-addr", r.addr); res.err == nil {
			t.Fatalf("the restore killed at %s reported success", at)
		}
		if !r.wait(10 * time.Second) {
			t.Fatalf("the daemon was not killed at %s", at)
		}
		if inSwarmDir(r) {
			t.Fatalf("a restore killed at %s left a swarm directory", at)
		}
		r.env = nil
		r.Start()
		si, err := r.swarmInfo()
		if err != nil || si.LocalNodeState != "inactive" {
			t.Fatalf("after a restore killed at %s the node is %+v (%v), want in no swarm", at, si, err)
		}
	}
	r.mustCLI(t, "swarm", "restore", "-i", file, "--listen-addr", r.addr)
	got := readState(t, r)
	mu.Lock()
	defer mu.Unlock()
	missing, before := 0, 0
	for name, at := range acked {
		if at.Before(start) {
			before++
			if !got.names[name] {
				missing++
				t.Errorf("service %s, acknowledged before the backup started, is not in it", name)
			}
		}
	}
	for name := range got.names {
		if !tried[name] {
			t.Errorf("the restored swarm has a service %s nobody created", name)
		}
	}
	t.Logf("%d creates acknowledged in all, %d before the backup started (%d missing); the backup (%d bytes, %s through the CLI) holds %d services",
		len(acked), before, missing, len(data), took.Round(time.Millisecond), len(got.names))
	// The restored manager restarts on its data dir into the same swarm,
	// and takes writes.
	r.Kill9()
	r.Start()
	eventually(t, 10*time.Second, func() error {
		_, stderr, err := r.CLI("service", "create", "--name", "after", "--replicas", "0", "--driver", "process", "--detach", "/bin/true")
		if err != nil {
			return fmt.Errorf("%v: %s", err, stderr)
		}
		return nil
	})
	if again := readState(t, r); len(again.names) != len(got.names)+1 {
		t.Errorf("after a restart the restored swarm has %d services, want %d", len(again.names), len(got.names)+1)
	}

	// Without quorum a backup is refused, not answered from a replica.
	m1, m2, m3 := c.managers[0], c.managers[1], c.managers[2]
	m1.Kill9()
	m2.Kill9()
	eventually(t, 10*time.Second, func() error {
		_, stderr, err := m3.CLI("swarm", "backup", "-o", filepath.Join(c.base, "noquorum.backup"))
		if err == nil || !strings.Contains(stderr, "no leader") {
			return fmt.Errorf("backup without quorum: %v %s", err, stderr)
		}
		return nil
	})
	// A copy of a stopped manager's data dir is a backup too: a daemon
	// started on it and forced into a new cluster has every acknowledged
	// create.
	m3.Stop()
	cp := c.newNode("copy")
	if err := os.RemoveAll(cp.dataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(cp.dataDir, os.DirFS(m3.dataDir)); err != nil {
		t.Fatal(err)
	}
	cp.Start()
	cp.mustCLI(t, "swarm", "init", "--force-new-cluster")
	fromCopy := readState(t, cp)
	for name := range acked {
		if !fromCopy.names[name] {
			t.Errorf("service %s, acknowledged, is not in the copy of a stopped manager's data dir", name)
		}
	}
}
