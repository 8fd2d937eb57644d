package cli_test

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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

// When fakeDaemonEnv is set, the test binary run as `daemon ...` is a fake
// flotilla daemon (see runFakeDaemon); the sandbox tests start it through
// SandboxUp, exactly as the CLI would start the real one.
const (
	fakeDaemonEnv = "FLOTILLA_CLI_TEST_FAKE_DAEMON"
	fakePIDDirEnv = "FLOTILLA_CLI_TEST_PID_DIR" // each fake writes <hostname>.pid here
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeDaemonEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "daemon" {
		os.Exit(runFakeDaemon(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// fakeJoin is what a fake daemon records of the join request it got, in
// DATA_DIR/join.json.
type fakeJoin struct {
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
	if err := fs.Parse(args); err != nil {
		fmt.Println("fake daemon:", err)
		return 2
	}
	if b, err := json.Marshal(args); err == nil {
		_ = os.WriteFile(filepath.Join(*dataDir, "args.json"), b, 0o644)
	}
	if dir := os.Getenv(fakePIDDirEnv); dir != "" {
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
		w.Header().Set("Api-Version", fakeAPIVersion)
		_, _ = w.Write([]byte("OK"))
	case "GET /info":
		info := system.Info{Name: d.hostname, Swarm: swarm.Info{
			LocalNodeState: d.state, ControlAvailable: d.role == swarm.NodeRoleManager,
		}}
		if d.state == swarm.LocalNodeStateActive {
			info.Swarm.NodeID = d.nodeID
			info.Swarm.NodeAddr, _, _ = net.SplitHostPort(d.addr)
		}
		writeJSON(w, http.StatusOK, info)
	case "POST /swarm/init":
		var req swarm.InitRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeAPIError(w, http.StatusBadRequest, err.Error())
			return
		}
		if d.state == swarm.LocalNodeStateActive {
			writeAPIError(w, http.StatusServiceUnavailable, "This node is already part of a swarm.")
			return
		}
		if err := d.listenCluster(req.ListenAddr); err != nil {
			writeAPIError(w, http.StatusInternalServerError, err.Error())
			return
		}
		d.state, d.role, d.addr = swarm.LocalNodeStateActive, swarm.NodeRoleManager, req.AdvertiseAddr
		d.tokens = swarm.JoinTokens{Worker: "SWMTKN-1-w-" + randomHex(), Manager: "SWMTKN-1-m-" + randomHex()}
		d.members = []swarm.Node{fakeNode(d.nodeID, d.hostname, swarm.NodeRoleManager, d.addr, true)}
		writeJSON(w, http.StatusOK, d.nodeID)
	case "GET /swarm":
		if d.role != swarm.NodeRoleManager {
			writeAPIError(w, http.StatusServiceUnavailable, "This node is not a swarm manager.")
			return
		}
		var sw swarm.Swarm
		sw.ID = "fake-cluster"
		sw.Version.Index = 1
		sw.JoinTokens = d.tokens
		writeJSON(w, http.StatusOK, sw)
	case "POST /swarm/join":
		d.join(w, r)
	case "GET /nodes":
		if d.role != swarm.NodeRoleManager {
			writeAPIError(w, http.StatusServiceUnavailable, "This node is not a swarm manager.")
			return
		}
		writeJSON(w, http.StatusOK, d.members)
	default:
		writeAPIError(w, http.StatusNotFound, "page not found")
	}
}

// join tries each remote address in turn, like the real daemon.
func (d *fakeSwarmDaemon) join(w http.ResponseWriter, r *http.Request) {
	var req swarm.JoinRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeAPIError(w, http.StatusBadRequest, err.Error())
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
			writeAPIError(w, http.StatusInternalServerError, err.Error())
			return
		}
		d.state, d.role, d.addr = swarm.LocalNodeStateActive, role, req.AdvertiseAddr
		b, _ := json.Marshal(fakeJoin{Request: req, Via: remote})
		_ = os.WriteFile(filepath.Join(d.dataDir, "join.json"), b, 0o644)
		w.WriteHeader(http.StatusOK)
		return
	}
	writeAPIError(w, http.StatusInternalServerError, "could not join: "+strings.Join(errs, "; "))
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
		writeJSON(w, http.StatusOK, role)
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
