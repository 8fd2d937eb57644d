// Package engineapi serves the swarm subset of the Docker Engine API, so the
// unmodified docker CLI can drive flotilla.
//
// NewHandler builds an http.Handler from a Backend (backend.go). The files
// are split by concern:
//
//   - router.go: the routing table, the /v{major.minor} prefix, common
//     headers, 404/405, error writing and the hand-off of cluster writes to
//     the Raft leader (Backend.LeaderProxy);
//   - apiversion.go: API version parsing and checks; version.go: versions;
//   - errors.go: errdefs classes → HTTP status, {"message": ...} bodies;
//   - decode.go: strict decoding of JSON request bodies; params.go: query
//     parameters; filters.go: the "filters" query parameter;
//   - system.go, hostinfo.go: /_ping, /version, /info;
//   - swarm.go: /swarm...; nodes.go: /nodes...; networks.go: /networks...
//   - events.go, events_filter.go: /events, served from the Backend's
//     EventSource (an interface of its own, not part of Backend);
//
// To add a group of routes (services, tasks, logs), add its methods to
// Backend, write a file with a `func (a *api) xxxRoutes() []route` and list
// it in NewHandler. POST and DELETE routes go to the leader automatically
// unless listed in localWrites; handlers return classified errors (see
// internal/errdefs) and may stream: an error returned after the response
// started is logged, not written.
package engineapi
