package stack

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// fakeAPI keeps a stack's objects in memory, as the managers would
// for the calls Deploy and Remove make; label filters only.
type fakeAPI struct {
	API      // the calls it does not implement panic
	n        int
	services map[string]*swarm.Service
	networks map[string]*network.Summary
	secrets  map[string]*swarm.Secret
	configs  map[string]*swarm.Config
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{services: map[string]*swarm.Service{}, networks: map[string]*network.Summary{},
		secrets: map[string]*swarm.Secret{}, configs: map[string]*swarm.Config{}}
}

func (f *fakeAPI) id() string { f.n++; return fmt.Sprintf("id%d", f.n) }

// matches applies the label filters: "KEY" or "KEY=VALUE".
func matches(filters client.Filters, labels map[string]string) bool {
	for l := range filters["label"] {
		k, v, withValue := strings.Cut(l, "=")
		if got, ok := labels[k]; !ok || withValue && got != v {
			return false
		}
	}
	return true
}

func (f *fakeAPI) ServiceList(_ context.Context, o client.ServiceListOptions) (client.ServiceListResult, error) {
	var r client.ServiceListResult
	for _, s := range f.services {
		if matches(o.Filters, s.Spec.Labels) {
			r.Items = append(r.Items, *s)
		}
	}
	return r, nil
}

func (f *fakeAPI) ServiceCreate(_ context.Context, o client.ServiceCreateOptions) (client.ServiceCreateResult, error) {
	id := f.id()
	f.services[id] = &swarm.Service{ID: id, Spec: o.Spec}
	return client.ServiceCreateResult{ID: id}, nil
}

func (f *fakeAPI) ServiceUpdate(_ context.Context, id string, o client.ServiceUpdateOptions) (client.ServiceUpdateResult, error) {
	f.services[id].Spec = o.Spec
	return client.ServiceUpdateResult{}, nil
}

func (f *fakeAPI) ServiceRemove(_ context.Context, id string, _ client.ServiceRemoveOptions) (client.ServiceRemoveResult, error) {
	delete(f.services, id)
	return client.ServiceRemoveResult{}, nil
}

func (f *fakeAPI) NetworkList(_ context.Context, o client.NetworkListOptions) (client.NetworkListResult, error) {
	var r client.NetworkListResult
	for _, n := range f.networks {
		if matches(o.Filters, n.Labels) {
			r.Items = append(r.Items, *n)
		}
	}
	return r, nil
}

func (f *fakeAPI) NetworkCreate(_ context.Context, name string, o client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	id := f.id()
	n := &network.Summary{}
	n.ID, n.Name, n.Labels = id, name, o.Labels
	f.networks[id] = n
	return client.NetworkCreateResult{ID: id}, nil
}

func (f *fakeAPI) NetworkRemove(_ context.Context, id string, _ client.NetworkRemoveOptions) (client.NetworkRemoveResult, error) {
	delete(f.networks, id)
	return client.NetworkRemoveResult{}, nil
}

func (f *fakeAPI) SecretList(_ context.Context, o client.SecretListOptions) (client.SecretListResult, error) {
	var r client.SecretListResult
	for _, s := range f.secrets {
		if matches(o.Filters, s.Spec.Labels) {
			r.Items = append(r.Items, *s)
		}
	}
	return r, nil
}

func (f *fakeAPI) SecretCreate(_ context.Context, o client.SecretCreateOptions) (client.SecretCreateResult, error) {
	id := f.id()
	f.secrets[id] = &swarm.Secret{ID: id, Spec: o.Spec}
	return client.SecretCreateResult{ID: id}, nil
}

func (f *fakeAPI) SecretUpdate(_ context.Context, id string, o client.SecretUpdateOptions) (client.SecretUpdateResult, error) {
	f.secrets[id].Spec.Labels = o.Spec.Labels
	return client.SecretUpdateResult{}, nil
}

func (f *fakeAPI) SecretRemove(_ context.Context, id string, _ client.SecretRemoveOptions) (client.SecretRemoveResult, error) {
	delete(f.secrets, id)
	return client.SecretRemoveResult{}, nil
}

func (f *fakeAPI) ConfigList(_ context.Context, o client.ConfigListOptions) (client.ConfigListResult, error) {
	var r client.ConfigListResult
	for _, c := range f.configs {
		if matches(o.Filters, c.Spec.Labels) {
			r.Items = append(r.Items, *c)
		}
	}
	return r, nil
}

func (f *fakeAPI) ConfigCreate(_ context.Context, o client.ConfigCreateOptions) (client.ConfigCreateResult, error) {
	id := f.id()
	f.configs[id] = &swarm.Config{ID: id, Spec: o.Spec}
	return client.ConfigCreateResult{ID: id}, nil
}

func (f *fakeAPI) ConfigUpdate(_ context.Context, id string, o client.ConfigUpdateOptions) (client.ConfigUpdateResult, error) {
	f.configs[id].Spec.Labels = o.Spec.Labels
	return client.ConfigUpdateResult{}, nil
}

func (f *fakeAPI) ConfigRemove(_ context.Context, id string, _ client.ConfigRemoveOptions) (client.ConfigRemoveResult, error) {
	delete(f.configs, id)
	return client.ConfigRemoveResult{}, nil
}
