package engineapi

import (
	"context"
	"fmt"
	"sync"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// fakeServices is the services-and-tasks half of the fake backend.
type fakeServices struct {
	smu      sync.Mutex
	services []swarm.Service
	tasks    []swarm.Task
	upToDate map[string]bool // task ID → runs the current spec
	created  []swarm.ServiceSpec
	updated  []fakeServiceUpdate
	removed  []string
	logs     []LogMessage
}

type fakeServiceUpdate struct {
	ID       string
	Version  uint64
	Spec     swarm.ServiceSpec
	Rollback bool
}

func (f *fakeServices) ServiceCreate(_ context.Context, spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	if spec.TaskTemplate.ContainerSpec == nil || spec.TaskTemplate.ContainerSpec.Image == "" {
		return swarm.ServiceCreateResponse{}, errdefs.Invalid("ContainerSpec: image reference must be provided")
	}
	f.created = append(f.created, spec)
	id := fmt.Sprintf("svc%022d", len(f.services)+1)
	f.services = append(f.services, swarm.Service{ID: id, Spec: spec})
	return swarm.ServiceCreateResponse{ID: id}, nil
}

func (f *fakeServices) Services(context.Context, bool) ([]swarm.Service, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	return append([]swarm.Service(nil), f.services...), nil
}

func (f *fakeServices) ServiceUpdate(_ context.Context, id string, version uint64, spec swarm.ServiceSpec, rollback bool) (swarm.ServiceUpdateResponse, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.updated = append(f.updated, fakeServiceUpdate{id, version, spec, rollback})
	return swarm.ServiceUpdateResponse{}, nil
}

func (f *fakeServices) ServiceRemove(_ context.Context, id string) error {
	f.smu.Lock()
	defer f.smu.Unlock()
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeServices) Tasks(_ context.Context, upToDateOnly bool) ([]swarm.Task, error) {
	f.smu.Lock()
	defer f.smu.Unlock()
	var out []swarm.Task
	for _, t := range f.tasks {
		if !upToDateOnly || f.upToDate[t.ID] {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeServices) Logs(_ context.Context, sel LogSelector, _ LogOptions, out LogSink) error {
	f.smu.Lock()
	msgs := append([]LogMessage(nil), f.logs...)
	f.smu.Unlock()
	for _, m := range msgs {
		if m.ServiceID != sel.ServiceID || (sel.TaskID != "" && m.TaskID != sel.TaskID) {
			continue
		}
		if err := out.Write(m); err != nil {
			return err
		}
	}
	return nil
}
