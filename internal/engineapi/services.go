package engineapi

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func (a *api) serviceRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/services", handler: a.getServices},
		{method: http.MethodPost, path: "/services/create", handler: a.createService},
		{method: http.MethodGet, path: "/services/{id}", handler: a.getService},
		{method: http.MethodPost, path: "/services/{id}/update", handler: a.updateService},
		{method: http.MethodDelete, path: "/services/{id}", handler: a.removeService},
		{method: http.MethodGet, path: "/services/{id}/logs", handler: a.serviceLogs},
		// No registry: the docker CLI asks for the image digest first and,
		// on an error, warns and goes on without pinning it.
		{method: http.MethodGet, path: "/distribution/{name}/json", handler: a.distribution},
	}
}

func (a *api) distribution(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	return errdefs.NotFound("flotilla has no image registry: image %s is used as it is present on each node", vars["name"])
}

// serviceFilter is a parsed GET /services filter (dockerd's keys).
type serviceFilter struct {
	ids, names, labels, modes []string
}

func newServiceFilter(args filterArgs) (serviceFilter, error) {
	if err := args.validate("id", "name", "label", "mode"); err != nil {
		return serviceFilter{}, err
	}
	f := serviceFilter{ids: args.get("id"), names: args.get("name"), labels: args.get("label"), modes: args.get("mode")}
	for _, m := range f.modes {
		switch m {
		case "replicated", "global":
		default:
			return serviceFilter{}, errdefs.Invalid("Invalid filter: 'mode'='%s'", m)
		}
	}
	return f, nil
}

func serviceMode(s *swarm.Service) string {
	if s.Spec.Mode.Global != nil {
		return "global"
	}
	return "replicated"
}

func (f serviceFilter) match(s *swarm.Service) bool {
	if !matchAnyPrefix(s.ID, f.ids) || !matchAnyPrefix(s.Spec.Name, f.names) {
		return false
	}
	if len(f.modes) > 0 {
		ok := false
		for _, m := range f.modes {
			ok = ok || m == serviceMode(s)
		}
		if !ok {
			return false
		}
	}
	return matchLabels(s.Spec.Labels, f.labels)
}

func (a *api) getServices(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	f, err := newServiceFilter(args)
	if err != nil {
		return err
	}
	withStatus, err := strictBool(r, "status")
	if err != nil {
		return err
	}
	services, err := a.b.Services(r.Context(), withStatus)
	if err != nil {
		return err
	}
	return writeJSONList(w, services, func(x *swarm.Service) bool { return f.match(x) })
}

// resolveService finds the service ref names (see resolve).
func (a *api) resolveService(ctx context.Context, ref string) (swarm.Service, error) {
	services, err := a.b.Services(ctx, false)
	if err != nil {
		return swarm.Service{}, err
	}
	return resolve(serviceRefs, services, ref)
}

func (a *api) getService(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	s, err := a.resolveService(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	s.ServiceStatus = nil // as Docker: only a list with status=true has it
	return writeJSON(w, http.StatusOK, s)
}

// serviceSpecBody is a service spec as clients send it: older ones give
// the service's networks in the top-level Networks, which API 1.44 dropped
// from the types.
type serviceSpecBody struct {
	swarm.ServiceSpec
	Networks []swarm.NetworkAttachmentConfig `json:",omitempty"`
}

// decodeServiceSpec decodes a service spec, moving the deprecated
// top-level Networks into TaskTemplate.Networks as dockerd does.
func decodeServiceSpec(r *http.Request) (swarm.ServiceSpec, error) {
	var body serviceSpecBody
	if err := decodeBody(r, &body); err != nil {
		return swarm.ServiceSpec{}, err
	}
	spec := body.ServiceSpec
	if len(body.Networks) > 0 {
		if len(spec.TaskTemplate.Networks) > 0 {
			return spec, errdefs.Invalid("the spec gives networks both in Networks (deprecated) and in TaskTemplate.Networks; give them in TaskTemplate.Networks only")
		}
		spec.TaskTemplate.Networks = body.Networks
	}
	return spec, nil
}

func (a *api) createService(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	spec, err := decodeServiceSpec(r)
	if err != nil {
		return err
	}
	resp, err := a.b.ServiceCreate(r.Context(), spec)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (a *api) updateService(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	spec, err := decodeServiceSpec(r)
	if err != nil {
		return err
	}
	version, err := objectVersion(r, "service")
	if err != nil {
		return err
	}
	rollback := r.URL.Query().Get("rollback")
	if rollback != "" && rollback != "previous" {
		return errdefs.Invalid("invalid rollback parameter %q: the only value is \"previous\"", rollback)
	}
	s, err := a.resolveService(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	resp, err := a.b.ServiceUpdate(r.Context(), s.ID, version, spec, rollback == "previous")
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (a *api) removeService(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	s, err := a.resolveService(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	return a.b.ServiceRemove(r.Context(), s.ID)
}
