package cli_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/cli"
	"github.com/flotilla-org/flotilla/internal/sandbox/sandboxtest"
)

// fakeAPIVersion is the API version the fake daemons announce on /_ping.
const fakeAPIVersion = "1.47"

// apiRequest is one request the fake API received.
type apiRequest struct {
	Method  string
	Path    string // without the /vX.Y prefix
	Version string // "1.47" for versioned paths, "" for /_ping
	Query   url.Values
	Body    []byte
}

// fakeAPI is a Docker Engine API server on a unix socket, answering
// /_ping itself and every other route from canned handlers.
type fakeAPI struct {
	t    *testing.T
	host string // unix://...
	sock string

	mu     sync.Mutex
	reqs   []apiRequest
	routes map[string]http.HandlerFunc // "GET /nodes"
	// ended is what a task list without desired-state=running answers
	// when tasksSequence serves /tasks (the tasks already shut down).
	ended []swarm.Task
}

var versionedPath = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPI{t: t, host: "unix://" + sock, sock: sock, routes: map[string]http.HandlerFunc{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return f
}

// shortTempDir is a fresh directory with a short path, for unix sockets.
var shortTempDir = sandboxtest.ShortTempDir

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body)) // handlers may read it too
	req := apiRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Body: body}
	if m := versionedPath.FindStringSubmatch(r.URL.Path); m != nil {
		req.Version, req.Path = m[1], m[2]
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	h := f.routes[r.Method+" "+req.Path]
	f.mu.Unlock()

	if req.Path == "/_ping" {
		w.Header().Set("Api-Version", fakeAPIVersion)
		w.Header().Set("Ostype", "linux")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "OK")
		}
		return
	}
	if h == nil {
		writeAPIError(w, http.StatusNotFound, "page not found")
		return
	}
	h(w, r)
}

// handle installs a handler for "METHOD /path" (path without version).
func (f *fakeAPI) handle(route string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[route] = h
}

// reply makes route answer status with v as JSON.
func (f *fakeAPI) reply(route string, status int, v any) {
	f.handle(route, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, status, v) })
}

// fail makes route answer a docker-style error.
func (f *fakeAPI) fail(route string, status int, msg string) {
	f.handle(route, func(w http.ResponseWriter, _ *http.Request) { writeAPIError(w, status, msg) })
}

// requests returns the requests received, /_ping excluded.
func (f *fakeAPI) requests() []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []apiRequest
	for _, r := range f.reqs {
		if r.Path != "/_ping" {
			out = append(out, r)
		}
	}
	return out
}

// allRequests returns every request received, /_ping included.
func (f *fakeAPI) allRequests() []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiRequest(nil), f.reqs...)
}

// only returns the requests for one route.
func (f *fakeAPI) only(method, path string) []apiRequest {
	var out []apiRequest
	for _, r := range f.requests() {
		if r.Method == method && r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// routesCalled lists "METHOD /path" of every request but /_ping, in order.
func (f *fakeAPI) routesCalled() []string {
	var out []string
	for _, r := range f.requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// The fake daemons' answers, under the names these tests use.
var writeJSON, writeAPIError = sandboxtest.WriteJSON, sandboxtest.WriteAPIError

// result is what a user sees from one command.
type result struct {
	stdout, stderr string
	err            error
}

// run executes the flotilla command line args against host.
func run(t *testing.T, host string, args ...string) result {
	t.Helper()
	if host != "" {
		args = append([]string{"-H", host}, args...)
	}
	return runArgs(t, args...)
}

func runArgs(t *testing.T, args ...string) result {
	t.Helper()
	root := cli.NewRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(bytes.NewReader(nil))
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return result{stdout: out.String(), stderr: errOut.String(), err: err}
}

// mustRun runs args and fails the test if the command fails.
func mustRun(t *testing.T, host string, args ...string) result {
	t.Helper()
	r := run(t, host, args...)
	if r.err != nil {
		t.Fatalf("flotilla %v: %v\nstdout:\n%s\nstderr:\n%s", args, r.err, r.stdout, r.stderr)
	}
	return r
}

func decodeBody[T any](t *testing.T, r apiRequest) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%s %s: body %q: %v", r.Method, r.Path, r.Body, err)
	}
	return v
}
