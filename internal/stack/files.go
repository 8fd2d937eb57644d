package stack

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// A stack's secrets and configs, as docker's CLI makes them: one
// declared with file:, environment: or content: is the stack's
// (STACK_NAME, labelled with the namespace) and is created on deploy; an
// external one must exist.

// blob is a secret or config of a stack to create, or an external
// one to find.
type blob struct {
	name     string
	labels   map[string]string
	data     []byte
	external bool
}

// convertBlobs reads the secrets or configs the services use.
// env is the project's environment (the process's, then .env).
func convertBlobs(stack, noun string, used map[string]bool, declared map[string]types.FileObjectConfig, env types.Mapping) ([]blob, error) {
	var out []blob
	for _, key := range sortedKeys(used) {
		obj, ok := declared[key]
		if !ok {
			return nil, fmt.Errorf("undefined %s %q: declare it under the top-level \"%ss\" key", noun, key, noun)
		}
		b := blob{name: cmp.Or(obj.Name, ScopeName(stack, key)), external: bool(obj.External)}
		if b.external {
			out = append(out, b)
			continue
		}
		if obj.Driver != "" || obj.TemplateDriver != "" {
			return nil, fmt.Errorf("%s %s: driver and template_driver are not supported", noun, key)
		}
		b.labels = withNamespace(stack, obj.Labels)
		switch {
		case obj.File != "":
			data, err := os.ReadFile(obj.File)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", noun, key, err)
			}
			b.data = data
		case obj.Environment != "":
			v, ok := env[obj.Environment]
			if !ok {
				return nil, fmt.Errorf("%s %s: environment variable %s is not set", noun, key, obj.Environment)
			}
			b.data = []byte(v)
		case obj.Content != "":
			b.data = []byte(obj.Content)
		default:
			return nil, fmt.Errorf("%s %s: give file:, environment:, content: or external: true", noun, key)
		}
		out = append(out, b)
	}
	return out, nil
}

// fileTarget is a reference's file with the managers' defaults filled
// in, so that a redeploy compares equal: a secret under /run/secrets by
// its key, a config at /KEY; uid and gid 0; mode 0444.
func fileTarget(r types.FileReferenceConfig, config bool) (name, uid, gid string, mode os.FileMode) {
	name = r.Target
	if name == "" {
		name = r.Source
		if config {
			name = "/" + r.Source
		}
	}
	mode = 0o444
	if r.Mode != nil {
		mode = os.FileMode(*r.Mode)
	}
	return name, cmp.Or(r.UID, "0"), cmp.Or(r.GID, "0"), mode
}

func blobName(stack, key string, declared map[string]types.FileObjectConfig) string {
	return cmp.Or(declared[key].Name, ScopeName(stack, key))
}

func convertSecretRefs(stack string, refs []types.ServiceSecretConfig, declared map[string]types.FileObjectConfig) []*swarm.SecretReference {
	var out []*swarm.SecretReference
	for _, r := range refs {
		name, uid, gid, mode := fileTarget(types.FileReferenceConfig(r), false)
		out = append(out, &swarm.SecretReference{SecretName: blobName(stack, r.Source, declared),
			File: &swarm.SecretReferenceFileTarget{Name: name, UID: uid, GID: gid, Mode: mode}})
	}
	slices.SortStableFunc(out, func(a, b *swarm.SecretReference) int { return cmp.Compare(a.SecretName, b.SecretName) })
	return out
}

func convertConfigRefs(stack string, refs []types.ServiceConfigObjConfig, declared map[string]types.FileObjectConfig) []*swarm.ConfigReference {
	var out []*swarm.ConfigReference
	for _, r := range refs {
		name, uid, gid, mode := fileTarget(types.FileReferenceConfig(r), true)
		out = append(out, &swarm.ConfigReference{ConfigName: blobName(stack, r.Source, declared),
			File: &swarm.ConfigReferenceFileTarget{Name: name, UID: uid, GID: gid, Mode: mode}})
	}
	slices.SortStableFunc(out, func(a, b *swarm.ConfigReference) int { return cmp.Compare(a.ConfigName, b.ConfigName) })
	return out
}

// blobAPI is what deploying secrets or configs needs of the API: the IDs
// and versions of the existing ones by name, create, update.
type blobAPI struct {
	noun   string
	list   func(ctx context.Context) (map[string]swarm.Meta, map[string]string, error) // by name: meta, ID
	create func(ctx context.Context, b blob) (string, error)
	update func(ctx context.Context, id string, version swarm.Version, b blob) error
}

func secretAPI(api API) blobAPI {
	spec := func(b blob) swarm.SecretSpec {
		return swarm.SecretSpec{Annotations: swarm.Annotations{Name: b.name, Labels: b.labels}, Data: b.data}
	}
	return blobAPI{
		noun: "secret",
		list: func(ctx context.Context) (map[string]swarm.Meta, map[string]string, error) {
			res, err := api.SecretList(ctx, client.SecretListOptions{})
			if err != nil {
				return nil, nil, err
			}
			metas, ids := map[string]swarm.Meta{}, map[string]string{}
			for _, s := range res.Items {
				metas[s.Spec.Name], ids[s.Spec.Name] = s.Meta, s.ID
			}
			return metas, ids, nil
		},
		create: func(ctx context.Context, b blob) (string, error) {
			res, err := api.SecretCreate(ctx, client.SecretCreateOptions{Spec: spec(b)})
			return res.ID, err
		},
		update: func(ctx context.Context, id string, v swarm.Version, b blob) error {
			_, err := api.SecretUpdate(ctx, id, client.SecretUpdateOptions{Version: v, Spec: spec(b)})
			return err
		},
	}
}

func configAPI(api API) blobAPI {
	spec := func(b blob) swarm.ConfigSpec {
		return swarm.ConfigSpec{Annotations: swarm.Annotations{Name: b.name, Labels: b.labels}, Data: b.data}
	}
	return blobAPI{
		noun: "config",
		list: func(ctx context.Context) (map[string]swarm.Meta, map[string]string, error) {
			res, err := api.ConfigList(ctx, client.ConfigListOptions{})
			if err != nil {
				return nil, nil, err
			}
			metas, ids := map[string]swarm.Meta{}, map[string]string{}
			for _, c := range res.Items {
				metas[c.Spec.Name], ids[c.Spec.Name] = c.Meta, c.ID
			}
			return metas, ids, nil
		},
		create: func(ctx context.Context, b blob) (string, error) {
			res, err := api.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: spec(b)})
			return res.ID, err
		},
		update: func(ctx context.Context, id string, v swarm.Version, b blob) error {
			_, err := api.ConfigUpdate(ctx, id, client.ConfigUpdateOptions{Version: v, Spec: spec(b)})
			return err
		},
	}
}

// checkExternalBlobs fails when an external secret or config is missing.
func checkExternalBlobs(ctx context.Context, a blobAPI, blobs []blob) error {
	if !slices.ContainsFunc(blobs, func(b blob) bool { return b.external }) {
		return nil
	}
	_, ids, err := a.list(ctx)
	if err != nil {
		return err
	}
	var missing []error
	for _, b := range blobs {
		if b.external && ids[b.name] == "" {
			missing = append(missing, fmt.Errorf("%s %q is declared as external, but could not be found: create it before the stack is deployed", a.noun, b.name))
		}
	}
	return errors.Join(missing...)
}

// deployBlobs creates the stack's secrets or configs, or updates those
// that exist, as docker does (the managers refuse changed data: a secret
// or config is immutable, rotate it under a new name). It returns the
// IDs by name of every one the services use.
func deployBlobs(ctx context.Context, a blobAPI, out io.Writer, blobs []blob) (map[string]string, error) {
	if len(blobs) == 0 {
		return nil, nil
	}
	metas, ids, err := a.list(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].name < blobs[j].name })
	for _, b := range blobs {
		if b.external {
			continue
		}
		if id := ids[b.name]; id != "" {
			fmt.Fprintf(out, "Updating %s %s\n", a.noun, b.name)
			if err := a.update(ctx, id, metas[b.name].Version, b); err != nil {
				return nil, fmt.Errorf("failed to update %s %s: %w", a.noun, b.name, err)
			}
			continue
		}
		fmt.Fprintf(out, "Creating %s %s\n", a.noun, b.name)
		id, err := a.create(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("failed to create %s %s: %w", a.noun, b.name, err)
		}
		ids[b.name] = id
	}
	return ids, nil
}
