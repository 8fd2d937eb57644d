package manager

import (
	"bytes"
	"context"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/ids"
	"github.com/flotilla-org/flotilla/manager/state"
)

// Size limits of a secret's and a config's data, swarmkit's
// (controlapi.MaxSecretSize, MaxConfigSize): the data must be shorter.
const (
	MaxSecretSize = 500 * 1024
	MaxConfigSize = 1000 * 1024
)

// Secrets and configs are the same thing but for who may read the data:
// a blob is what the two share, so that one set of rules serves both.
type blob struct {
	swarm.Annotations
	Data       []byte
	Driver     *swarm.Driver // secrets only
	Templating *swarm.Driver
}

// blobKind says how one kind of blob is kept and checked.
type blobKind struct {
	noun  string // "secret" or "config", as dockerd's messages say
	table string
	max   int
	// all returns every object of the kind with its blob.
	all func(v *state.View) []blobObject
	// refs returns the IDs and names a container spec references.
	refs func(c *swarm.ContainerSpec) (idsOf, namesOf []string)
}

type blobObject struct {
	ID   string
	Blob blob
	Obj  state.Object
}

var secretKind = blobKind{
	noun: "secret", table: state.TableSecrets, max: MaxSecretSize,
	all: func(v *state.View) []blobObject {
		var out []blobObject
		for _, s := range v.Secrets() {
			sp := s.Spec
			out = append(out, blobObject{s.ID, blob{sp.Annotations, sp.Data, sp.Driver, sp.Templating}, s})
		}
		return out
	},
	refs: func(c *swarm.ContainerSpec) (idsOf, namesOf []string) {
		for _, r := range c.Secrets {
			if r != nil {
				idsOf, namesOf = append(idsOf, r.SecretID), append(namesOf, r.SecretName)
			}
		}
		return idsOf, namesOf
	},
}

var configKind = blobKind{
	noun: "config", table: state.TableConfigs, max: MaxConfigSize,
	all: func(v *state.View) []blobObject {
		var out []blobObject
		for _, c := range v.Configs() {
			sp := c.Spec
			out = append(out, blobObject{c.ID, blob{sp.Annotations, sp.Data, nil, sp.Templating}, c})
		}
		return out
	},
	refs: func(c *swarm.ContainerSpec) (idsOf, namesOf []string) {
		for _, r := range c.Configs {
			if r != nil {
				idsOf, namesOf = append(idsOf, r.ConfigID), append(namesOf, r.ConfigName)
			}
		}
		return idsOf, namesOf
	},
}

// blobNameRE is swarmkit's rule for secret and config names.
var blobNameRE = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)

// validate checks a new blob with swarmkit's rules and messages, and
// refuses what flotilla does not do (drivers), saying so.
func (k blobKind) validate(b blob) error {
	switch {
	case b.Name == "":
		return errdefs.Invalid("name must be provided")
	case len(b.Name) > 64 || !blobNameRE.MatchString(b.Name):
		return errdefs.Invalid("invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]")
	case b.Templating != nil && b.Templating.Name != "":
		return errdefs.Invalid("template drivers are not supported by flotilla: leave out --template-driver; the %s's data is used as given", k.noun)
	case b.Driver != nil && b.Driver.Name != "":
		return errdefs.Invalid("secret drivers are not supported by flotilla: leave out --driver and give the secret's data (secret create NAME FILE)")
	case len(b.Data) >= k.max || len(b.Data) < 1:
		return errdefs.Invalid("%s data must be larger than 0 and less than %d bytes", k.noun, k.max)
	}
	return nil
}

// byName returns the object of the kind with that name, if any.
func (k blobKind) byName(v *state.View, name string) (blobObject, bool) {
	for _, o := range k.all(v) {
		if o.Blob.Name == name {
			return o, true
		}
	}
	return blobObject{}, false
}

// byID returns the object of the kind with that full ID, if any.
func (k blobKind) byID(v *state.View, id string) (blobObject, bool) {
	for _, o := range k.all(v) {
		if o.ID == id {
			return o, true
		}
	}
	return blobObject{}, false
}

// checkCreate refuses a new blob that is invalid or whose name is taken
// by another of its kind (409, swarmkit's message).
func (k blobKind) checkCreate(v *state.View, b blob) error {
	if err := k.validate(b); err != nil {
		return err
	}
	if _, ok := k.byName(v, b.Name); ok {
		return errdefs.Conflict("%s %s already exists", k.noun, b.Name)
	}
	return nil
}

// checkUpdate returns the blob an update of b at version changes, or
// why it may not: only the labels may change, as in swarmkit (data are
// immutable: rotation is a new name).
func (k blobKind) checkUpdate(v *state.View, id string, version uint64, b blob) (blobObject, error) {
	cur, ok := k.byID(v, id)
	if !ok {
		return cur, errdefs.NotFound("%s %s not found", k.noun, id)
	}
	if b.Name != cur.Blob.Name || (b.Data != nil && !bytes.Equal(b.Data, cur.Blob.Data)) {
		return cur, errdefs.Invalid("only updates to Labels are allowed")
	}
	if at := cur.Obj.GetMeta().Version.Index; at != version {
		return cur, errdefs.Conflict("update out of sequence: %s %s is at version %d, not %d; inspect it again and retry", k.noun, id, at, version)
	}
	return cur, nil
}

// checkRemove returns the blob to delete, or swarmkit's refusal (with
// its status, InvalidArgument: 400) when a service references it.
func (k blobKind) checkRemove(v *state.View, id string) (blobObject, error) {
	cur, ok := k.byID(v, id)
	if !ok {
		return cur, errdefs.NotFound("%s %s not found", k.noun, id)
	}
	var users []string
	for _, s := range v.Services() {
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			if refIDs, _ := k.refs(cs); slices.Contains(refIDs, id) {
				users = append(users, s.Spec.Name)
			}
		}
	}
	if len(users) > 0 {
		what := "services"
		if len(users) == 1 {
			what = "service"
		}
		return cur, errdefs.Invalid("%s '%s' is in use by the following %s: %s", k.noun, cur.Blob.Name, what, strings.Join(users, ", "))
	}
	return cur, nil
}

// createBlob stores obj, a new blob b, under a new ID it sets.
func (m *Manager) createBlob(ctx context.Context, k blobKind, b blob, obj state.Object, setID func(string)) (string, error) {
	if err := m.requireLeader(); err != nil {
		return "", err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if err := k.checkCreate(m.store.View(), b); err != nil {
		return "", err
	}
	id := ids.New()
	setID(id)
	if err := m.propose(ctx, state.NewOp(k.table, state.ActionCreate, obj, 0)); err != nil {
		return "", err
	}
	return id, nil
}

// updateBlob changes a blob's labels (relabel returns the new object).
func (m *Manager) updateBlob(ctx context.Context, k blobKind, id string, version uint64, b blob, relabel func(cur state.Object) state.Object) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	cur, err := k.checkUpdate(m.store.View(), id, version, b)
	if err != nil {
		return err
	}
	return m.propose(ctx, state.NewOp(k.table, state.ActionUpdate, relabel(cur.Obj), version))
}

// removeBlob deletes a blob no service references.
func (m *Manager) removeBlob(ctx context.Context, k blobKind, id string) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	cur, err := k.checkRemove(m.store.View(), id)
	if err != nil {
		return err
	}
	return m.propose(ctx, state.NewOp(k.table, state.ActionDelete, cur.Obj, 0))
}

// resolveRef finds what a service's reference names, as swarmkit checks
// it: by ID, whose name must then match; flotilla also takes a name
// alone (its CLI sends names, as the docker CLI resolves them itself).
// It returns the object's ID and name, or ok false.
func (k blobKind) resolveRef(v *state.View, id, name string) (string, string, bool) {
	if id != "" {
		o, ok := k.byID(v, id)
		if !ok || (name != "" && o.Blob.Name != name) {
			return "", "", false
		}
		return o.ID, o.Blob.Name, true
	}
	o, ok := k.byName(v, name)
	return o.ID, o.Blob.Name, ok
}

// notFound is swarmkit's message for references to missing blobs.
func (k blobKind) notFound(missing []string) error {
	what := k.noun + "s"
	if len(missing) == 1 {
		what = k.noun
	}
	return errdefs.Invalid("%s not found: %s", what, strings.Join(missing, ", "))
}

// checkTarget refuses a file target a task cannot get, and two
// references that would write the same file (swarmkit's message).
func (k blobKind) checkTarget(seen map[string]string, name, target string) error {
	if target == "" {
		return errdefs.Invalid("malformed file %s reference, invalid target file name provided", k.noun)
	}
	if slices.Contains(strings.Split(target, "/"), "..") {
		return errdefs.Invalid("invalid target %q for %s %s: a target may not contain '..'", target, k.noun, name)
	}
	if prev, ok := seen[target]; ok {
		return errdefs.Invalid("%s references '%s' and '%s' have a conflicting target: '%s'", k.noun, prev, name, target)
	}
	seen[target] = name
	return nil
}

// attachSecretsConfigs resolves a service spec's secret and config
// references to their objects, storing both ID and name as dockerd does,
// and fills Docker's defaults: a file target named after the secret
// (under /run/secrets) or at /NAME for a config, uid and gid 0, mode
// 0444. Unknown references are refused with swarmkit's message.
func attachSecretsConfigs(v *state.View, spec *swarm.ServiceSpec) error {
	if spec.TaskTemplate.ContainerSpec == nil {
		return nil
	}
	// The spec may share its container spec with a stored one (a
	// rollback's previous spec): work on copies.
	c := *spec.TaskTemplate.ContainerSpec
	cs := &c
	cs.Secrets = slices.Clone(cs.Secrets)
	cs.Configs = slices.Clone(cs.Configs)
	var missing []string
	seen := map[string]string{}
	for i, r := range cs.Secrets {
		if r == nil {
			return errdefs.Invalid("malformed secret reference")
		}
		out := *r
		f, ok, err := secretKind.attachRef(v, seen, &out.SecretID, &out.SecretName, out.File)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, refName(r.SecretName, r.SecretID))
			continue
		}
		out.File = &f
		cs.Secrets[i] = &out
	}
	if len(missing) > 0 {
		return secretKind.notFound(missing)
	}
	seen = map[string]string{}
	for i, r := range cs.Configs {
		if r == nil {
			return errdefs.Invalid("malformed config reference")
		}
		if r.Runtime != nil {
			return errdefs.Invalid("runtime config targets (credential specs) are not supported by flotilla; give a file target")
		}
		out := *r
		var file *swarm.SecretReferenceFileTarget // the same fields
		if r.File != nil {
			sf := swarm.SecretReferenceFileTarget(*r.File)
			file = &sf
		}
		f, ok, err := configKind.attachRef(v, seen, &out.ConfigID, &out.ConfigName, file)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, refName(r.ConfigName, r.ConfigID))
			continue
		}
		cf := swarm.ConfigReferenceFileTarget(f)
		out.File = &cf
		cs.Configs[i] = &out
	}
	if len(missing) > 0 {
		return configKind.notFound(missing)
	}
	spec.TaskTemplate.ContainerSpec = cs
	return nil
}

// attachRef resolves one reference, given its ID and name fields (set to
// the object's on success) and its file target (nil: the default), and
// returns the file target to store; ok is false when no object matches.
func (k blobKind) attachRef(v *state.View, seen map[string]string, id, name *string, file *swarm.SecretReferenceFileTarget) (f swarm.SecretReferenceFileTarget, ok bool, err error) {
	rid, rname, ok := k.resolveRef(v, *id, *name)
	if !ok {
		return f, false, nil
	}
	*id, *name = rid, rname
	if file != nil {
		f = *file
	}
	target := rname // a secret's, under /run/secrets
	if k.table == state.TableConfigs {
		target = "/" + rname
	}
	switch {
	case f.Name == "":
		f.Name = target
	case k.table == state.TableConfigs:
		f.Name = path.Clean(f.Name)
	}
	if f.UID == "" {
		f.UID = "0"
	}
	if f.GID == "" {
		f.GID = "0"
	}
	if f.Mode == 0 {
		f.Mode = 0o444
	}
	return f, true, k.checkTarget(seen, rname, f.Name)
}

func refName(name, id string) string {
	if name != "" {
		return name
	}
	return id
}

// Secrets returns every secret as the API shows it: without its data,
// which no client ever reads back (as in Docker).
func (m *Manager) Secrets() []swarm.Secret {
	all := m.store.View().Secrets()
	out := make([]swarm.Secret, 0, len(all))
	for _, s := range all {
		w := s.Copy().Secret
		w.Spec.Data = nil
		w.Spec.Labels = wireLabels(w.Spec.Labels)
		out = append(out, w)
	}
	return out
}

// Configs returns every config as the API shows it, data included.
func (m *Manager) Configs() []swarm.Config {
	all := m.store.View().Configs()
	out := make([]swarm.Config, 0, len(all))
	for _, c := range all {
		w := c.Copy().Config
		w.Spec.Labels = wireLabels(w.Spec.Labels)
		out = append(out, w)
	}
	return out
}

// CreateSecret stores a new secret and returns its ID.
func (m *Manager) CreateSecret(ctx context.Context, spec swarm.SecretSpec) (string, error) {
	s := &state.Secret{}
	s.Spec = spec
	return m.createBlob(ctx, secretKind, blob{spec.Annotations, spec.Data, spec.Driver, spec.Templating}, s, func(id string) { s.ID = id })
}

// CreateConfig stores a new config and returns its ID.
func (m *Manager) CreateConfig(ctx context.Context, spec swarm.ConfigSpec) (string, error) {
	c := &state.Config{}
	c.Spec = spec
	return m.createBlob(ctx, configKind, blob{spec.Annotations, spec.Data, nil, spec.Templating}, c, func(id string) { c.ID = id })
}

// UpdateSecret changes a secret's labels; nothing else may change.
func (m *Manager) UpdateSecret(ctx context.Context, id string, version uint64, spec swarm.SecretSpec) error {
	return m.updateBlob(ctx, secretKind, id, version, blob{spec.Annotations, spec.Data, spec.Driver, spec.Templating}, func(cur state.Object) state.Object {
		u := cur.(*state.Secret).Copy()
		u.Spec.Labels = spec.Labels
		return u
	})
}

// UpdateConfig changes a config's labels; nothing else may change.
func (m *Manager) UpdateConfig(ctx context.Context, id string, version uint64, spec swarm.ConfigSpec) error {
	return m.updateBlob(ctx, configKind, id, version, blob{spec.Annotations, spec.Data, nil, spec.Templating}, func(cur state.Object) state.Object {
		u := cur.(*state.Config).Copy()
		u.Spec.Labels = spec.Labels
		return u
	})
}

// RemoveSecret deletes a secret no service uses.
func (m *Manager) RemoveSecret(ctx context.Context, id string) error {
	return m.removeBlob(ctx, secretKind, id)
}

// RemoveConfig deletes a config no service uses.
func (m *Manager) RemoveConfig(ctx context.Context, id string) error {
	return m.removeBlob(ctx, configKind, id)
}
