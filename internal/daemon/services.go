package daemon

import (
	"context"

	"github.com/moby/moby/api/types/swarm"
)

func (b *backend) ServiceCreate(ctx context.Context, spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error) {
	m, err := b.mgr()
	if err != nil {
		return swarm.ServiceCreateResponse{}, err
	}
	id, err := m.CreateService(ctx, spec)
	if err != nil {
		return swarm.ServiceCreateResponse{}, err
	}
	return swarm.ServiceCreateResponse{ID: id}, nil
}

func (b *backend) Services(ctx context.Context, withStatus bool) ([]swarm.Service, error) {
	m, err := b.mgr()
	if err != nil {
		return nil, err
	}
	return m.Services(withStatus), nil
}

func (b *backend) ServiceUpdate(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec, rollback bool) (swarm.ServiceUpdateResponse, error) {
	m, err := b.mgr()
	if err != nil {
		return swarm.ServiceUpdateResponse{}, err
	}
	return swarm.ServiceUpdateResponse{}, m.UpdateService(ctx, id, version, spec, rollback)
}

func (b *backend) ServiceRemove(ctx context.Context, id string) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	return m.RemoveService(ctx, id)
}

func (b *backend) Tasks(ctx context.Context, upToDateOnly bool) ([]swarm.Task, error) {
	m, err := b.mgr()
	if err != nil {
		return nil, err
	}
	return m.Tasks(upToDateOnly), nil
}

func (b *backend) NetworkCreate(ctx context.Context, spec swarm.NetworkSpec) (string, error) {
	m, err := b.mgr()
	if err != nil {
		return "", err
	}
	return m.CreateNetwork(ctx, spec)
}

func (b *backend) Networks(ctx context.Context) ([]swarm.Network, error) {
	m, err := b.mgr()
	if err != nil {
		return nil, err
	}
	return m.Networks(), nil
}

func (b *backend) NetworkRemove(ctx context.Context, id string) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	return m.RemoveNetwork(ctx, id)
}
