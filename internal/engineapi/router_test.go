package engineapi

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func TestVersionPrefix(t *testing.T) {
	h := NewHandler(newFakeCluster())
	for _, tc := range []struct {
		path      string
		code      int
		msg       string // exact error message, for errors
		plainText bool   // the error is plain text (clients older than 1.24)
	}{
		{path: "/info", code: 200},
		{path: "/v1.47/info", code: 200},
		{path: "/v1.24/info", code: 200},
		{path: "/v1.40/info", code: 200},
		{path: "/v1.47.0/info", code: 200},
		{path: "/v1.48/info", code: 400, msg: "client version 1.48 is too new. Maximum supported API version is 1.47"},
		{path: "/v2.0/info", code: 400, msg: "client version 2.0 is too new. Maximum supported API version is 1.47"},
		{path: "/v1.100/info", code: 400, msg: "client version 1.100 is too new. Maximum supported API version is 1.47"},
		{path: "/v1.23/info", code: 400, plainText: true, msg: "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{path: "/v1/info", code: 400, plainText: true, msg: "client version 1 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{path: "/v1.48/nodes/" + idA, code: 400, msg: "client version 1.48 is too new. Maximum supported API version is 1.47"},
		// Not a version prefix: an unknown path.
		{path: "/v1..2/info", code: 404, msg: "page not found"},
		{path: "/vx/info", code: 404, msg: "page not found"},
		{path: "/v/info", code: 404, msg: "page not found"},
		{path: "/v1.47", code: 404, msg: "page not found"},
		{path: "/v1.47/", code: 404, msg: "page not found"},
		{path: "/v1.47/v1.47/info", code: 404, msg: "page not found"},
		// Unknown paths are 404 whatever their version.
		{path: "/v1.99/nosuch", code: 404, msg: "page not found"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := serve(t, h, "GET", tc.path, "")
			wantStatus(t, rec, tc.code)
			if tc.code == 200 {
				return
			}
			var got string
			if tc.plainText {
				if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Fatalf("Content-Type = %q, want text/plain", ct)
				}
				got = strings.TrimSpace(rec.Body.String())
			} else {
				got = errorMessage(t, rec)
			}
			if got != tc.msg {
				t.Errorf("message = %q, want %q", got, tc.msg)
			}
		})
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	h := NewHandler(newFakeCluster())
	for _, tc := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/nosuch", 404, ""},
		{"GET", "/", 404, ""},
		{"GET", "/nodes/", 404, ""},
		{"GET", "/nodes/" + idA + "/nosuch", 404, ""},
		{"GET", "/swarm/nosuch", 404, ""},
		{"GET", "/containers/json", 404, ""},
		{"POST", "/nosuch", 404, ""},
		{"GET", "/swarm/init", 405, "POST"},
		{"DELETE", "/swarm", 405, "GET"},
		{"PUT", "/nodes/" + idA, 405, "GET, DELETE"},
		{"POST", "/info", 405, "GET"},
		{"HEAD", "/info", 405, "GET"},
		{"POST", "/_ping", 405, "GET, HEAD"},
		{"POST", "/v1.47/version", 405, "GET"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rec := serve(t, h, tc.method, tc.path, "")
			wantStatus(t, rec, tc.code)
			msg := errorMessage(t, rec)
			if tc.code == 404 && msg != "page not found" {
				t.Errorf("message = %q, want %q", msg, "page not found")
			}
			if tc.code == 405 {
				if got := rec.Header().Get("Allow"); got != tc.allow {
					t.Errorf("Allow = %q, want %q", got, tc.allow)
				}
				if want := "method " + tc.method + " not allowed"; !strings.HasPrefix(msg, want) {
					t.Errorf("message = %q, want prefix %q", msg, want)
				}
			}
		})
	}
}

// Every response, errors included, names the server and the API version.
func TestCommonHeaders(t *testing.T) {
	h := NewHandler(newFakeCluster())
	for _, tc := range []struct{ method, path string }{
		{"GET", "/_ping"}, {"HEAD", "/_ping"}, {"GET", "/version"}, {"GET", "/info"},
		{"GET", "/swarm"}, {"GET", "/nodes"}, {"GET", "/nodes/nosuch"},
		{"GET", "/nosuch"}, {"PUT", "/info"}, {"GET", "/v1.99/info"}, {"GET", "/v1.2/info"},
		{"POST", "/swarm/update"},
	} {
		rec := serve(t, h, tc.method, tc.path, "")
		for k, want := range map[string]string{
			"API-Version":         "1.47",
			"Server":              "flotilla/" + Version,
			"Ostype":              "linux",
			"Docker-Experimental": "false",
		} {
			if got := rec.Header().Get(k); got != want {
				t.Errorf("%s %s: header %s = %q, want %q", tc.method, tc.path, k, got, want)
			}
		}
	}
}

// Each error class maps to its HTTP status and keeps its message.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errdefs.Invalid("bad %s", "thing"), 400},
		{errdefs.Unauthorized("no token"), 401},
		{errdefs.Forbidden("not you"), 403},
		{errdefs.NotFound("no such"), 404},
		{errdefs.Conflict("update out of sequence"), 409},
		{errdefs.Unavailable("no leader"), 503},
		{errdefs.ErrNotInSwarm, 503},
		{errdefs.ErrNotManager, 503},
		{errors.New("boom"), 500},
		{errdefs.WithKind(errdefs.KindConflict, errors.New("wrapped")), 409},
		{errors.Join(errors.New("outer"), errdefs.NotFound("inner")), 404},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			f := newFakeCluster()
			f.clusterErr = tc.err
			h := NewHandler(f)
			for _, path := range []string{"/swarm", "/nodes", "/v1.47/nodes/node-a"} {
				rec := serve(t, h, "GET", path, "")
				wantStatus(t, rec, tc.code)
				if got := errorMessage(t, rec); got != tc.err.Error() {
					t.Errorf("%s: message = %q, want %q", path, got, tc.err.Error())
				}
			}
		})
	}
}

func TestPanicBecomes500(t *testing.T) {
	f := newFakeCluster()
	f.panicOn = "SwarmInspect"
	rec := serve(t, NewHandler(f), "GET", "/swarm", "")
	wantStatus(t, rec, 500)
	if got := errorMessage(t, rec); got != "internal server error" {
		t.Errorf("message = %q", got)
	}
}

// recordingProxy stands in for the Backend's leader proxy.
type recordingProxy struct {
	method, path, body string
	calls              int
}

func (p *recordingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls++
	p.method, p.path = r.Method, r.URL.Path
	b, _ := io.ReadAll(r.Body)
	p.body = string(b)
	w.Header().Set("X-Proxied", "yes")
	w.WriteHeader(http.StatusAccepted)
}

// Cluster writes go to the leader proxy when there is one; reads and the
// writes that concern the local node stay here.
func TestLeaderProxy(t *testing.T) {
	for _, tc := range []struct {
		method, path, body string
		proxied            bool
	}{
		{"POST", "/swarm/update?version=7", `{"Name":"default"}`, true},
		{"POST", "/v1.47/swarm/update?version=7", `{"Name":"default"}`, true},
		{"POST", "/nodes/node-b/update?version=11", `{"Role":"manager"}`, true},
		{"DELETE", "/nodes/node-b", "", true},
		{"DELETE", "/v1.30/nodes/nosuch?force=1", "", true},
		{"POST", "/swarm/init", `{"ListenAddr":"0.0.0.0:2377"}`, false},
		{"POST", "/swarm/join", `{"RemoteAddrs":["10.0.0.1:2377"],"JoinToken":"t"}`, false},
		{"POST", "/v1.47/swarm/leave?force=1", "", false},
		{"GET", "/swarm", "", true},
		{"GET", "/nodes", "", true},
		{"GET", "/nodes/node-b", "", true},
		{"GET", "/info", "", false},
		{"GET", "/_ping", "", false},
		{"HEAD", "/_ping", "", false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			f := newFakeCluster()
			p := &recordingProxy{}
			f.proxy = p
			rec := serve(t, NewHandler(f), tc.method, tc.path, tc.body)
			if !tc.proxied {
				if p.calls != 0 {
					t.Fatalf("request was handed to the leader proxy")
				}
				return
			}
			wantStatus(t, rec, http.StatusAccepted)
			if p.calls != 1 || rec.Header().Get("X-Proxied") != "yes" {
				t.Fatalf("request was not handed to the leader proxy")
			}
			wantPath, _, _ := strings.Cut(tc.path, "?")
			if p.method != tc.method || p.path != wantPath || p.body != tc.body {
				t.Errorf("proxy got %s %s %q, want %s %s %q", p.method, p.path, p.body, tc.method, wantPath, tc.body)
			}
			if c := f.recorded(); len(c.swarmUpdates)+len(c.nodeUpdates)+len(c.nodeRemoves) != 0 {
				t.Errorf("backend was called as well: %+v", c)
			}
		})
	}
	// A request with an unsupported version is refused here, not forwarded.
	f := newFakeCluster()
	p := &recordingProxy{}
	f.proxy = p
	rec := serve(t, NewHandler(f), "DELETE", "/v1.99/nodes/node-b", "")
	wantStatus(t, rec, 400)
	if p.calls != 0 {
		t.Error("request with an unsupported version was forwarded")
	}
}

func TestForwardsToLeader(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         bool
	}{
		{"POST", "/swarm/unlock", false},
		{"POST", "/swarm/init", false},
		{"POST", "/services/create", true},
		{"DELETE", "/services/{id}", true},
		{"GET", "/services", true},
		{"GET", "/info", false},
		{"GET", "/version", false},
	} {
		if got := forwardsToLeader(tc.method, tc.path); got != tc.want {
			t.Errorf("forwardsToLeader(%s, %s) = %v, want %v", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"1.24", "1.24", 0}, {"1.9", "1.24", -1}, {"1.100", "1.47", 1}, {"1", "1.0", 0},
		{"2", "1.47", 1}, {"1.47.1", "1.47", 1}, {"0.9", "1.24", -1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestRouteMinVersion(t *testing.T) {
	called := false
	h := newRouter(newFakeCluster(), []route{{
		method: "GET", path: "/configs", minVersion: "1.30",
		handler: func(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
			called = true
			if v := apiVersion(r.Context()); v != "1.30" {
				t.Errorf("apiVersion = %q, want 1.30", v)
			}
			return nil
		},
	}})
	rec := serve(t, h, "GET", "/v1.29/configs", "")
	wantStatus(t, rec, 400)
	if got, want := errorMessage(t, rec), "GET /configs requires minimum API version 1.30"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	wantStatus(t, serve(t, h, "GET", "/v1.30/configs", ""), 200)
	if !called {
		t.Error("handler not called")
	}
}

// An error returned after a handler started its response is not written
// into the body.
func TestErrorAfterResponseStarted(t *testing.T) {
	h := newRouter(newFakeCluster(), []route{{
		method: "GET", path: "/stream",
		handler: func(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
			w.WriteHeader(200)
			_, _ = w.Write([]byte("partial"))
			return errors.New("stream broke")
		},
	}})
	rec := serve(t, h, "GET", "/stream", "")
	wantStatus(t, rec, 200)
	if rec.Body.String() != "partial" {
		t.Errorf("body = %q", rec.Body.String())
	}
}

func TestEscapedPathSegments(t *testing.T) {
	h := NewHandler(newFakeCluster())
	// %2D is "-": the segment is unescaped before name resolution.
	rec := serve(t, h, "GET", "/nodes/node%2Da", "")
	wantStatus(t, rec, 200)
	// A slash inside a segment stays inside it.
	rec = serve(t, h, "GET", "/nodes/node%2Fa", "")
	wantStatus(t, rec, 404)
	if got := errorMessage(t, rec); got != "node node/a not found" {
		t.Errorf("message = %q", got)
	}
}
