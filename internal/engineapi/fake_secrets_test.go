package engineapi

import (
	"context"
	"fmt"
	"sync"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// fakeSecrets is the secrets and configs part of the fake backend: it
// keeps what it is given, refuses a taken name and, as the manager, never
// returns a secret's data.
type fakeSecrets struct {
	smu        sync.Mutex
	secrets    []swarm.Secret
	configs    []swarm.Config
	secUpdates []string // "id@version labels"
}

func (f *fakeSecrets) SecretCreate(_ context.Context, spec swarm.SecretSpec) (string, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	for _, s := range f.secrets {
		if s.Spec.Name == spec.Name {
			return "", errdefs.Conflict("secret %s already exists", spec.Name)
		}
	}
	id := fmt.Sprintf("sec%022d", len(f.secrets)+1)
	f.secrets = append(f.secrets, swarm.Secret{ID: id, Spec: spec, Meta: swarm.Meta{Version: swarm.Version{Index: 7}, CreatedAt: epoch, UpdatedAt: epoch}})
	return id, nil
}

func (f *fakeSecrets) Secrets(context.Context) ([]swarm.Secret, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	out := make([]swarm.Secret, len(f.secrets))
	for i, s := range f.secrets {
		s.Spec.Data = nil
		out[i] = s
	}
	return out, nil
}

func (f *fakeSecrets) SecretUpdate(_ context.Context, id string, version uint64, spec swarm.SecretSpec) error {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.secUpdates = append(f.secUpdates, fmt.Sprintf("%s@%d %v", id, version, spec.Labels))
	return nil
}

func (f *fakeSecrets) SecretRemove(_ context.Context, id string) error {
	f.smu.Lock()
	defer f.smu.Unlock()
	for i, s := range f.secrets {
		if s.ID == id {
			f.secrets = append(f.secrets[:i], f.secrets[i+1:]...)
			return nil
		}
	}
	return errdefs.NotFound("secret %s not found", id)
}

func (f *fakeSecrets) ConfigCreate(_ context.Context, spec swarm.ConfigSpec) (string, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	id := fmt.Sprintf("cfg%022d", len(f.configs)+1)
	f.configs = append(f.configs, swarm.Config{ID: id, Spec: spec, Meta: swarm.Meta{CreatedAt: epoch, UpdatedAt: epoch}})
	return id, nil
}

func (f *fakeSecrets) Configs(context.Context) ([]swarm.Config, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	return append([]swarm.Config(nil), f.configs...), nil
}

func (f *fakeSecrets) ConfigUpdate(context.Context, string, uint64, swarm.ConfigSpec) error {
	return nil
}

func (f *fakeSecrets) ConfigRemove(_ context.Context, id string) error {
	f.smu.Lock()
	defer f.smu.Unlock()
	for i, c := range f.configs {
		if c.ID == id {
			f.configs = append(f.configs[:i], f.configs[i+1:]...)
			return nil
		}
	}
	return errdefs.NotFound("config %s not found", id)
}
