package daemon

import (
	"context"

	"github.com/moby/moby/api/types/swarm"
)

func (b *backend) SecretCreate(ctx context.Context, spec swarm.SecretSpec) (string, error) {
	m, err := b.mgr()
	if err != nil {
		return "", err
	}
	return m.CreateSecret(ctx, spec)
}

func (b *backend) Secrets(context.Context) ([]swarm.Secret, error) {
	m, err := b.mgr()
	if err != nil {
		return nil, err
	}
	return m.Secrets(), nil
}

func (b *backend) SecretUpdate(ctx context.Context, id string, version uint64, spec swarm.SecretSpec) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	return m.UpdateSecret(ctx, id, version, spec)
}

func (b *backend) SecretRemove(ctx context.Context, id string) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	return m.RemoveSecret(ctx, id)
}

func (b *backend) ConfigCreate(ctx context.Context, spec swarm.ConfigSpec) (string, error) {
	m, err := b.mgr()
	if err != nil {
		return "", err
	}
	return m.CreateConfig(ctx, spec)
}

func (b *backend) Configs(context.Context) ([]swarm.Config, error) {
	m, err := b.mgr()
	if err != nil {
		return nil, err
	}
	return m.Configs(), nil
}

func (b *backend) ConfigUpdate(ctx context.Context, id string, version uint64, spec swarm.ConfigSpec) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	return m.UpdateConfig(ctx, id, version, spec)
}

func (b *backend) ConfigRemove(ctx context.Context, id string) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	return m.RemoveConfig(ctx, id)
}
