package engineapi

import (
	"context"
	"net/http"
	"sort"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/ids"
)

// maxBlobBody bounds a secret's or config's create and update body: the
// data is base64 in JSON, so a config just under its 1000 KiB limit
// takes 1.34 MB, and one a little over must still reach the managers to
// be refused with Docker's message.
const maxBlobBody = 2 << 20

// blobAPI serves one of the two kinds of blob, secrets and configs, the
// same way: S is the spec, T the object.
type blobAPI[S, T any] struct {
	path   string // "/secrets"
	refs   refKind[T]
	labels func(*T) map[string]string
	create func(context.Context, S) (string, error)
	list   func(context.Context) ([]T, error)
	update func(ctx context.Context, id string, version uint64, spec S) error
	remove func(ctx context.Context, id string) error
}

func (a *api) secretRoutes() []route {
	b := blobAPI[swarm.SecretSpec, swarm.Secret]{
		path:   "/secrets",
		refs:   ids.SecretRefs,
		labels: func(s *swarm.Secret) map[string]string { return s.Spec.Labels },
		create: a.b.SecretCreate, list: a.b.Secrets, update: a.b.SecretUpdate, remove: a.b.SecretRemove,
	}
	c := blobAPI[swarm.ConfigSpec, swarm.Config]{
		path:   "/configs",
		refs:   ids.ConfigRefs,
		labels: func(c *swarm.Config) map[string]string { return c.Spec.Labels },
		create: a.b.ConfigCreate, list: a.b.Configs, update: a.b.ConfigUpdate, remove: a.b.ConfigRemove,
	}
	return append(b.routes(), c.routes()...)
}

func (b blobAPI[S, T]) routes() []route {
	return []route{
		{method: http.MethodGet, path: b.path, handler: b.getAll},
		{method: http.MethodPost, path: b.path + "/create", handler: b.createOne},
		{method: http.MethodGet, path: b.path + "/{id}", handler: b.getOne},
		{method: http.MethodDelete, path: b.path + "/{id}", handler: b.removeOne},
		{method: http.MethodPost, path: b.path + "/{id}/update", handler: b.updateOne},
	}
}

// getAll answers the list with dockerd's filters: names (exact), name
// (a name prefix) and id (an ID prefix) match if any of them does, as in
// swarmkit; every label filter must match.
func (b blobAPI[S, T]) getAll(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := args.validate("names", "name", "id", "label"); err != nil {
		return err
	}
	all, err := b.list(r.Context())
	if err != nil {
		return err
	}
	names, prefixes, idPrefixes := args.get("names"), args.get("name"), args.get("id")
	byRef := len(names)+len(prefixes)+len(idPrefixes) > 0
	out := make([]T, 0, len(all))
	for i := range all {
		o := &all[i]
		name, id := b.refs.Name(o), b.refs.ID(o)
		if byRef && !(args["names"][name] || (len(prefixes) > 0 && matchAnyPrefix(name, prefixes)) || (len(idPrefixes) > 0 && matchAnyPrefix(id, idPrefixes))) {
			continue
		}
		if matchLabels(b.labels(o), args.get("label")) {
			out = append(out, *o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return b.refs.Name(&out[i]) < b.refs.Name(&out[j]) })
	return writeJSON(w, http.StatusOK, out)
}

func (b blobAPI[S, T]) createOne(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var spec S
	if err := decodeBodyLimit(r, &spec, maxBlobBody); err != nil {
		return err
	}
	id, err := b.create(r.Context(), spec)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, swarm.SecretCreateResponse{ID: id})
}

func (b blobAPI[S, T]) resolve(ctx context.Context, ref string) (T, error) {
	all, err := b.list(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return resolve(b.refs, all, ref)
}

func (b blobAPI[S, T]) getOne(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	o, err := b.resolve(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

func (b blobAPI[S, T]) removeOne(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	o, err := b.resolve(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	if err := b.remove(r.Context(), b.refs.ID(&o)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (b blobAPI[S, T]) updateOne(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var spec S
	if err := decodeBodyLimit(r, &spec, maxBlobBody); err != nil {
		return err
	}
	version, err := objectVersion(r, b.refs.Noun)
	if err != nil {
		return err
	}
	o, err := b.resolve(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	if err := b.update(r.Context(), b.refs.ID(&o), version, spec); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
