package engineapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// handlerFunc serves one route. vars holds the {placeholders} of the route
// path. A returned error is written as a JSON error unless the handler has
// already started the response.
type handlerFunc func(w http.ResponseWriter, r *http.Request, vars map[string]string) error

// route is one entry of the routing table. path is unversioned, such as
// "/nodes/{id}/update"; a segment in braces matches any non-empty segment.
type route struct {
	method  string
	path    string
	handler handlerFunc
	// minVersion is the lowest API version serving this route ("" for
	// MinAPIVersion), for routes added in later API versions.
	minVersion string
}

// localWrites are the writes served by the node that receives them even
// when it is a follower: they change the local node, not the cluster.
var localWrites = map[string]bool{
	"/swarm/init":   true,
	"/swarm/join":   true,
	"/swarm/leave":  true,
	"/swarm/unlock": true,
}

// forwardsToLeader tells whether a request for a route is handed to the
// Backend's LeaderProxy: every POST and DELETE but the local writes, and
// reads of cluster state. Reads go to the leader too, as swarmkit's
// control API does, so a manager that is still catching up (just
// restarted) never shows stale state; the Backend serves them locally
// when there is no leader, so reads still answer without quorum.
func forwardsToLeader(method, path string) bool {
	if method == http.MethodGet {
		return isClusterRead(path) || path == PathSwarmBackup
	}
	return (method == http.MethodPost || method == http.MethodDelete) && !localWrites[path] && path != PathSwarmRestore
}

func isClusterRead(path string) bool {
	for _, p := range []string{"/swarm", "/nodes", "/services", "/tasks", "/networks"} {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// NewHandler returns the http.Handler serving the swarm subset of the
// Docker Engine API from b, both unversioned and under /v{major.minor}/.
func NewHandler(b Backend) http.Handler {
	return NewHandlerWithMetrics(b, nil, nil)
}

// NewHandlerWithMetrics is NewHandler counting requests in m and logging
// failures to log (nil: slog's default, as component engineapi).
func NewHandlerWithMetrics(b Backend, m *Metrics, log *slog.Logger) http.Handler {
	a := &api{b: b}
	var routes []route
	for _, group := range [][]route{
		a.systemRoutes(),
		a.swarmRoutes(),
		a.lockRoutes(),
		a.nodeRoutes(),
		a.serviceRoutes(),
		a.taskRoutes(),
		a.networkRoutes(),
		a.secretRoutes(),
		a.backupRoutes(),
		a.eventRoutes(),
	} {
		routes = append(routes, group...)
	}
	rt := newRouter(b, routes)
	rt.metrics = m
	if log != nil {
		rt.log = log
	}
	return rt
}

// api holds the route handlers.
type api struct {
	b Backend
}

type compiledRoute struct {
	route
	segs []string
}

type router struct {
	b       Backend
	routes  []compiledRoute
	metrics *Metrics
	log     *slog.Logger
}

func newRouter(b Backend, routes []route) *router {
	rt := &router{b: b, log: slog.Default().With("component", "engineapi")}
	for _, r := range routes {
		if !strings.HasPrefix(r.path, "/") {
			panic("engineapi: route path must start with /: " + r.path)
		}
		rt.routes = append(rt.routes, compiledRoute{route: r, segs: strings.Split(r.path[1:], "/")})
	}
	return rt
}

type apiVersionKey struct{}

// apiVersion returns the API version of the request: the one in its path
// prefix, or APIVersion for an unversioned path.
func apiVersion(ctx context.Context) string {
	if v, ok := ctx.Value(apiVersionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

func (rt *router) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &responseWriter{ResponseWriter: rw}
	h := w.Header()
	h.Set("Server", "flotilla/"+Version)
	h.Set("Api-Version", APIVersion)
	h.Set("Ostype", osType)
	h.Set("Docker-Experimental", "false")

	start, routeLabel := time.Now(), routeUnmatched
	defer func() { rt.metrics.observe(r.Method, routeLabel, w.status, start) }()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			rt.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if !w.started() {
				writeErrorStatus(w, http.StatusInternalServerError, "internal server error")
			}
		}
	}()

	version, segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		writeErrorStatus(w, http.StatusNotFound, "page not found")
		return
	}
	rte, vars, allowed := rt.match(r.Method, segs)
	if rte == nil {
		if len(allowed) == 0 {
			writeErrorStatus(w, http.StatusNotFound, "page not found")
			return
		}
		h.Set("Allow", strings.Join(allowed, ", "))
		writeErrorStatus(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed for %s", r.Method, r.URL.Path))
		return
	}
	routeLabel = rte.path

	if version == "" {
		version = APIVersion
	} else if msg := checkVersion(version, rte); msg != "" {
		if compareVersions(version, MinAPIVersion) < 0 {
			// Clients older than API 1.24 expect plain-text errors; like
			// dockerd, answer them in plain text so the user can read it.
			http.Error(w, msg, http.StatusBadRequest)
			return
		}
		writeErrorStatus(w, http.StatusBadRequest, msg)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), apiVersionKey{}, version))

	if forwardsToLeader(rte.method, rte.path) {
		if p := rt.b.LeaderProxy(r); p != nil {
			p.ServeHTTP(w, r)
			return
		}
	}

	if err := rte.handler(w, r, vars); err != nil {
		switch {
		case w.started():
			// The response is under way (a stream): the error can no
			// longer reach the client.
			rt.log.Warn("error after the response started", "method", r.Method, "path", r.URL.Path, "error", err)
			return
		case errdefs.KindOf(err) == errdefs.KindUnknown:
			// Classified errors are answers; an unclassified one is a bug
			// or an unexpected failure worth a log line.
			rt.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		}
		writeError(w, err)
	}
}

// splitPath splits an escaped request path into its API version prefix
// ("" if none) and its unescaped segments. ok is false if a segment cannot
// be unescaped.
func splitPath(escaped string) (version string, segs []string, ok bool) {
	if !strings.HasPrefix(escaped, "/") {
		return "", nil, false
	}
	parts := strings.Split(escaped[1:], "/")
	if first := parts[0]; len(first) > 1 && first[0] == 'v' && isVersion(first[1:]) {
		version = first[1:]
		parts = parts[1:]
	}
	segs = make([]string, len(parts))
	for i, p := range parts {
		s, err := url.PathUnescape(p)
		if err != nil {
			return "", nil, false
		}
		segs[i] = s
	}
	return version, segs, true
}

// match finds the route for method and path segments. When the path
// matches only routes of other methods, it returns their methods.
func (rt *router) match(method string, segs []string) (*compiledRoute, map[string]string, []string) {
	var allowed []string
	for i := range rt.routes {
		rte := &rt.routes[i]
		vars, ok := matchSegments(rte.segs, segs)
		if !ok {
			continue
		}
		if rte.method == method {
			return rte, vars, nil
		}
		if !slices.Contains(allowed, rte.method) {
			allowed = append(allowed, rte.method)
		}
	}
	return nil, nil, allowed
}

func matchSegments(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var vars map[string]string
	for i, p := range pattern {
		if len(p) > 2 && p[0] == '{' && p[len(p)-1] == '}' {
			if segs[i] == "" {
				return nil, false
			}
			if vars == nil {
				vars = make(map[string]string)
			}
			vars[p[1:len(p)-1]] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return vars, true
}

// responseWriter remembers whether the response has started, so an error
// returned by a streaming handler is not written into its body.
type responseWriter struct {
	http.ResponseWriter
	status int
}

func (w *responseWriter) started() bool { return w.status != 0 }

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Flush lets streaming handlers (logs, events) push data.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
