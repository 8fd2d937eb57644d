// Package sandboxtest fakes the flotilla daemon for tests of the sandbox:
// a test binary whose TestMain calls RunFakeDaemon serves as the daemons
// that sandbox.Up starts, exactly as it would start the real one.
package sandboxtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

// When daemonEnv is set, the test binary run as `daemon ...` is a fake
// flotilla daemon (see runFakeDaemon).
const (
	daemonEnv = "FLOTILLA_SANDBOX_TEST_FAKE_DAEMON"
	pidDirEnv = "FLOTILLA_SANDBOX_TEST_PID_DIR" // each fake writes <hostname>.pid here
)

// apiVersion is the API version the fake daemons announce on /_ping.
const apiVersion = "1.47"

// RunFakeDaemon, called first in TestMain, runs the fake daemon and exits
// when this test binary was started as one; otherwise it returns.
func RunFakeDaemon() {
	if os.Getenv(daemonEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "daemon" {
		os.Exit(runFakeDaemon(os.Args[2:]))
	}
}

// UseFakeDaemons makes the daemons that sandbox.Up starts from this test
// binary fake ones for the rest of the test, and returns the directory
// where they record their PIDs (<hostname>.pid).
func UseFakeDaemons(t *testing.T) string {
	t.Helper()
	pidDir := t.TempDir()
	t.Setenv(daemonEnv, "1")
	t.Setenv(pidDirEnv, pidDir)
	return pidDir
}

// Join is what a fake daemon records of the join request it got, in
// DATA_DIR/join.json.
type Join struct {
	Request swarm.JoinRequest
	Via     string // the remote address that accepted it
}

// fakeRegistration is what a joining fake sends to a manager's cluster
// address.
type fakeRegistration struct {
	NodeID, Hostname, Token, Addr string
}

// runFakeDaemon is a minimal swarm daemon: it serves the Engine API on -H,
// and after init/join a tiny HTTP "cluster port" on its listen address,
// through which joiners register with the first manager. It exits on
// SIGTERM.
func runFakeDaemon(args []string) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "")
	host := fs.String("H", "", "")
	hostname := fs.String("hostname", "", "")
	failOn := fs.String("fake-fail-on", "", "exit at once when --hostname is this")
	fs.String("fake-flag", "", "ignored; shows DaemonArgs arrive")
	fs.String("publish-addr", "", "the routing mesh's address (unused here)")
	if err := fs.Parse(args); err != nil {
		fmt.Println("fake daemon:", err)
		return 2
	}
	if b, err := json.Marshal(args); err == nil {
		_ = os.WriteFile(filepath.Join(*dataDir, "args.json"), b, 0o644)
	}
	if dir := os.Getenv(pidDirEnv); dir != "" {
		// Write-then-rename: a reader sees the whole PID or no file.
		tmp := filepath.Join(dir, *hostname+".pid.tmp")
		if os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())), 0o644) == nil {
			_ = os.Rename(tmp, filepath.Join(dir, *hostname+".pid"))
		}
	}
	if *failOn == *hostname {
		fmt.Println("fake daemon: failing on purpose")
		return 3
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)

	l, err := net.Listen("unix", strings.TrimPrefix(*host, "unix://"))
	if err != nil {
		fmt.Println("fake daemon:", err)
		return 1
	}
	d := &fakeSwarmDaemon{dataDir: *dataDir, hostname: *hostname, nodeID: "id-" + *hostname, state: swarm.LocalNodeStateInactive}
	api := &http.Server{Handler: d}
	go func() { _ = api.Serve(l) }()
	fmt.Println("fake daemon: serving on", *host)
	<-sigs
	_ = api.Close()
	d.mu.Lock()
	if d.cluster != nil {
		_ = d.cluster.Close()
	}
	d.mu.Unlock()
	fmt.Println("fake daemon: stopped")
	return 0
}

type fakeSwarmDaemon struct {
	dataDir, hostname, nodeID string

	mu      sync.Mutex
	state   swarm.LocalNodeState
	role    swarm.NodeRole
	addr    string
	tokens  swarm.JoinTokens
	members []swarm.Node // on the manager that ran init
	cluster *http.Server
}

func (d *fakeSwarmDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if m := versionedPath.FindStringSubmatch(path); m != nil {
		path = m[2]
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch r.Method + " " + path {
	case "GET /_ping", "HEAD /_ping":
		w.Header().Set("Api-Version", apiVersion)
		_, _ = w.Write([]byte("OK"))
	case "GET /info":
		info := system.Info{Name: d.hostname, Swarm: swarm.Info{
			LocalNodeState: d.state, ControlAvailable: d.role == swarm.NodeRoleManager,
		}}
		if d.state == swarm.LocalNodeStateActive {
			info.Swarm.NodeID = d.nodeID
			info.Swarm.NodeAddr, _, _ = net.SplitHostPort(d.addr)
		}
		WriteJSON(w, http.StatusOK, info)
	case "POST /swarm/init":
		var req swarm.InitRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			WriteAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		if d.state == swarm.LocalNodeStateActive {
			WriteAPIError(w, http.StatusServiceUnavailable, "This node is already part of a swarm.")
			return
		}
		if err := d.listenCluster(req.ListenAddr); err != nil {
			WriteAPIError(w, http.StatusInternalServerError, err.Error())
			return
		}
		d.state, d.role, d.addr = swarm.LocalNodeStateActive, swarm.NodeRoleManager, req.AdvertiseAddr
		d.tokens = swarm.JoinTokens{Worker: "SWMTKN-1-w-" + randomHex(), Manager: "SWMTKN-1-m-" + randomHex()}
		d.members = []swarm.Node{fakeNode(d.nodeID, d.hostname, swarm.NodeRoleManager, d.addr, true)}
		WriteJSON(w, http.StatusOK, d.nodeID)
	case "GET /swarm":
		if d.role != swarm.NodeRoleManager {
			WriteAPIError(w, http.StatusServiceUnavailable, "This node is not a swarm manager.")
			return
		}
		var sw swarm.Swarm
		sw.ID = "fake-cluster"
		sw.Version.Index = 1
		sw.JoinTokens = d.tokens
		WriteJSON(w, http.StatusOK, sw)
	case "POST /swarm/join":
		d.join(w, r)
	case "GET /nodes":
		if d.role != swarm.NodeRoleManager {
			WriteAPIError(w, http.StatusServiceUnavailable, "This node is not a swarm manager.")
			return
		}
		WriteJSON(w, http.StatusOK, d.members)
	default:
		WriteAPIError(w, http.StatusNotFound, "page not found")
	}
}

// join tries each remote address in turn, like the real daemon.
func (d *fakeSwarmDaemon) join(w http.ResponseWriter, r *http.Request) {
	var req swarm.JoinRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		WriteAPIError(w, http.StatusBadRequest, err.Error())
		return
	}
	reg, _ := json.Marshal(fakeRegistration{NodeID: d.nodeID, Hostname: d.hostname, Token: req.JoinToken, Addr: req.AdvertiseAddr})
	var errs []string
	for _, remote := range req.RemoteAddrs {
		resp, err := http.Post("http://"+remote+"/register", "application/json", bytes.NewReader(reg))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		var role swarm.NodeRole
		err = json.NewDecoder(resp.Body).Decode(&role)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			errs = append(errs, fmt.Sprintf("%s: status %d", remote, resp.StatusCode))
			continue
		}
		if err := d.listenCluster(req.ListenAddr); err != nil {
			WriteAPIError(w, http.StatusInternalServerError, err.Error())
			return
		}
		d.state, d.role, d.addr = swarm.LocalNodeStateActive, role, req.AdvertiseAddr
		b, _ := json.Marshal(Join{Request: req, Via: remote})
		_ = os.WriteFile(filepath.Join(d.dataDir, "join.json"), b, 0o644)
		w.WriteHeader(http.StatusOK)
		return
	}
	WriteAPIError(w, http.StatusInternalServerError, "could not join: "+strings.Join(errs, "; "))
}

// listenCluster serves the fake cluster port: POST /register admits a node
// with a valid join token.
func (d *fakeSwarmDaemon) listenCluster(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		var reg fakeRegistration
		if err := json.NewDecoder(r.Body).Decode(&reg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		var role swarm.NodeRole
		switch {
		case len(d.members) == 0:
			http.Error(w, "not the cluster's first manager", http.StatusServiceUnavailable)
			return
		case reg.Token == d.tokens.Manager:
			role = swarm.NodeRoleManager
		case reg.Token == d.tokens.Worker:
			role = swarm.NodeRoleWorker
		default:
			http.Error(w, "invalid join token", http.StatusForbidden)
			return
		}
		d.members = append(d.members, fakeNode(reg.NodeID, reg.Hostname, role, reg.Addr, false))
		WriteJSON(w, http.StatusOK, role)
	})
	d.cluster = &http.Server{Handler: mux}
	go func() { _ = d.cluster.Serve(l) }()
	return nil
}

func fakeNode(id, hostname string, role swarm.NodeRole, addr string, leader bool) swarm.Node {
	n := swarm.Node{ID: id}
	n.Spec.Role = role
	n.Spec.Availability = swarm.NodeAvailabilityActive
	n.Description.Hostname = hostname
	n.Description.Engine.EngineVersion = "fake"
	host, _, _ := net.SplitHostPort(addr)
	n.Status = swarm.NodeStatus{State: swarm.NodeStateReady, Addr: host}
	if role == swarm.NodeRoleManager {
		n.ManagerStatus = &swarm.ManagerStatus{Leader: leader, Reachability: swarm.ReachabilityReachable, Addr: addr}
	}
	return n
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var versionedPath = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteAPIError answers status with an Engine API error message.
func WriteAPIError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"message": msg})
}
