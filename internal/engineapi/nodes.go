package engineapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func (a *api) nodeRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/nodes", handler: a.getNodes},
		{method: http.MethodGet, path: "/nodes/{id}", handler: a.getNode},
		{method: http.MethodPost, path: "/nodes/{id}/update", handler: a.updateNode},
		{method: http.MethodDelete, path: "/nodes/{id}", handler: a.removeNode},
	}
}

// nodeFilter is a parsed GET /nodes filter. Values of one key are
// alternatives (any matches); different keys must all match.
type nodeFilter struct {
	ids, names           []string // prefixes of ID, of Description.Hostname
	roles                []swarm.NodeRole
	engineLabels, labels []string // on Description.Engine.Labels ("label"), on Spec.Labels ("node.label")
	membership           bool     // a membership filter is set
	acceptedInMembership bool     // ... and it includes "accepted"
}

// newNodeFilter checks the filters of GET /nodes. The keys and semantics
// are dockerd's (which hands them to swarmkit):
//   - id: ID prefix; name: hostname prefix (case-sensitive);
//   - role: manager|worker (case-insensitive), matched against Spec.Role
//     (swarmkit matches the observed role, which the Engine API does not
//     carry; the two differ only while a promotion or demotion is under way);
//   - membership: accepted|pending;
//   - label: engine labels, node.label: node (spec) labels; "key" or "key=value".
func newNodeFilter(args filterArgs) (nodeFilter, error) {
	if err := args.validate("id", "name", "role", "membership", "label", "node.label"); err != nil {
		return nodeFilter{}, err
	}
	f := nodeFilter{
		ids:          args.get("id"),
		names:        args.get("name"),
		engineLabels: args.get("label"),
		labels:       args.get("node.label"),
	}
	for _, r := range args.get("role") {
		switch role := swarm.NodeRole(strings.ToLower(r)); role {
		case swarm.NodeRoleManager, swarm.NodeRoleWorker:
			f.roles = append(f.roles, role)
		case "":
		default:
			return nodeFilter{}, errdefs.Invalid("Invalid role filter: '%s'", r)
		}
	}
	for _, m := range args.get("membership") {
		switch strings.ToLower(m) {
		case "accepted":
			f.membership, f.acceptedInMembership = true, true
		case "pending":
			f.membership = true
		case "":
		default:
			return nodeFilter{}, errdefs.Invalid("Invalid membership filter: '%s'", m)
		}
	}
	return f, nil
}

func (f nodeFilter) match(n *swarm.Node) bool {
	if !matchAnyPrefix(n.ID, f.ids) || !matchAnyPrefix(n.Description.Hostname, f.names) {
		return false
	}
	if len(f.roles) > 0 && !slices.Contains(f.roles, n.Spec.Role) {
		return false
	}
	// The Engine API has no membership field: every node that made it into
	// the node list has been accepted (swarmkit no longer holds nodes
	// pending), so "pending" matches none and "accepted" all.
	if f.membership && !f.acceptedInMembership {
		return false
	}
	return matchLabels(n.Description.Engine.Labels, f.engineLabels) && matchLabels(n.Spec.Labels, f.labels)
}

func (a *api) getNodes(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	f, err := newNodeFilter(args)
	if err != nil {
		return err
	}
	nodes, err := a.b.Nodes(r.Context())
	if err != nil {
		return err
	}
	return writeJSONList(w, nodes, func(x *swarm.Node) bool { return f.match(x) })
}

// resolveNode finds the node ref names (see resolve).
func (a *api) resolveNode(ctx context.Context, ref string) (swarm.Node, error) {
	nodes, err := a.b.Nodes(ctx)
	if err != nil {
		return swarm.Node{}, err
	}
	return resolve(nodeRefs, nodes, ref)
}

func (a *api) getNode(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	n, err := a.resolveNode(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, n)
}

func (a *api) updateNode(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var spec swarm.NodeSpec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	version, err := objectVersion(r, "node")
	if err != nil {
		return err
	}
	n, err := a.resolveNode(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	return a.b.NodeUpdate(r.Context(), n.ID, version, spec)
}

func (a *api) removeNode(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	n, err := a.resolveNode(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	return a.b.NodeRemove(r.Context(), n.ID, boolValue(r, "force"))
}
