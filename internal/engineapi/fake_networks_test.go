package engineapi

import (
	"context"
	"fmt"
	"sync"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// fakeNetworks is the networks part of the fake backend: it keeps what it
// is given and refuses a taken name, as the manager does.
type fakeNetworks struct {
	nmu      sync.Mutex
	networks []swarm.Network
	nremoved []string
}

func (f *fakeNetworks) NetworkCreate(_ context.Context, spec swarm.NetworkSpec) (string, error) {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	for _, n := range f.networks {
		if n.Spec.Name == spec.Name {
			return "", errdefs.Conflict("network with name %s already exists", spec.Name)
		}
	}
	id := fmt.Sprintf("net%022d", len(f.networks)+1)
	n := swarm.Network{ID: id, Spec: spec, Meta: swarm.Meta{CreatedAt: epoch, UpdatedAt: epoch}}
	n.DriverState = swarm.Driver{Name: "overlay"}
	if spec.IPAMOptions != nil {
		n.IPAMOptions = spec.IPAMOptions
	}
	f.networks = append(f.networks, n)
	return id, nil
}

func (f *fakeNetworks) Networks(context.Context) ([]swarm.Network, error) {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	return append([]swarm.Network(nil), f.networks...), nil
}

func (f *fakeNetworks) NetworkRemove(_ context.Context, id string) error {
	f.nmu.Lock()
	defer f.nmu.Unlock()
	for i, n := range f.networks {
		if n.ID == id {
			f.networks = append(f.networks[:i], f.networks[i+1:]...)
			f.nremoved = append(f.nremoved, id)
			return nil
		}
	}
	return errdefs.NotFound("network %s not found", id)
}
