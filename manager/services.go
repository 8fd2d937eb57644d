package manager

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/ids"
	"github.com/flotilla-org/flotilla/manager/scheduler"
	"github.com/flotilla-org/flotilla/manager/state"
)

// LabelDriver is the container label that chooses the task driver
// (docker or process); the docker CLI sets it with --container-label.
const LabelDriver = scheduler.DriverLabel

// Drivers a task may ask for.
var knownDrivers = []string{"docker", "process", "fake"}

var serviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]*[a-zA-Z0-9])?$`)

// validateServiceSpec checks a spec and fills Docker's defaults. Errors
// say which field is wrong and how to fix it.
func validateServiceSpec(spec *swarm.ServiceSpec) error {
	cs := spec.TaskTemplate.ContainerSpec
	if cs == nil || strings.TrimSpace(cs.Image) == "" {
		return errdefs.Invalid("ContainerSpec: image reference must be provided")
	}
	if spec.Name != "" && (len(spec.Name) > 63 || !serviceNameRE.MatchString(spec.Name)) {
		return errdefs.Invalid("invalid service name %q: use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", spec.Name)
	}
	if d := cs.Labels[LabelDriver]; d != "" && !slices.Contains(knownDrivers, d) {
		return errdefs.Invalid("invalid driver %q (container label %s): use docker or process", d, LabelDriver)
	}
	switch {
	case spec.Mode.Replicated != nil && spec.Mode.Global != nil:
		return errdefs.Invalid("a service is either replicated or global, not both")
	case spec.Mode.ReplicatedJob != nil || spec.Mode.GlobalJob != nil:
		return errdefs.Invalid("job services are not supported yet; use a replicated or global service")
	case spec.Mode.Global == nil && spec.Mode.Replicated == nil:
		spec.Mode.Replicated = &swarm.ReplicatedService{}
	}
	if r := spec.Mode.Replicated; r != nil && r.Replicas == nil {
		one := uint64(1)
		r.Replicas = &one
	}
	if err := validateSpecCounts(spec); err != nil {
		return err
	}
	if err := validatePorts(spec); err != nil {
		return err
	}
	if err := validateHealthcheck(cs.Healthcheck); err != nil {
		return err
	}
	if err := refuseUnsupported(spec); err != nil {
		return err
	}
	if err := validateMounts(cs); err != nil {
		return err
	}
	if res := spec.TaskTemplate.Resources; res != nil {
		for _, l := range []*swarm.Limit{res.Limits} {
			if l != nil && (l.NanoCPUs < 0 || l.MemoryBytes < 0) {
				return errdefs.Invalid("resource limits must not be negative")
			}
		}
		if r := res.Reservations; r != nil && (r.NanoCPUs < 0 || r.MemoryBytes < 0) {
			return errdefs.Invalid("resource reservations must not be negative")
		}
	}
	if rp := spec.TaskTemplate.RestartPolicy; rp != nil {
		switch rp.Condition {
		case "", swarm.RestartPolicyConditionNone, swarm.RestartPolicyConditionOnFailure, swarm.RestartPolicyConditionAny:
		default:
			return errdefs.Invalid("invalid restart condition %q: use none, on-failure or any", rp.Condition)
		}
		if rp.Delay != nil && *rp.Delay < 0 {
			return errdefs.Invalid("restart delay must not be negative")
		}
	}
	for _, uc := range []*swarm.UpdateConfig{spec.UpdateConfig, spec.RollbackConfig} {
		if uc == nil {
			continue
		}
		switch uc.FailureAction {
		case "", swarm.UpdateFailureActionPause, swarm.UpdateFailureActionContinue, swarm.UpdateFailureActionRollback:
		default:
			return errdefs.Invalid("invalid update failure action %q: use pause, continue or rollback", uc.FailureAction)
		}
		switch uc.Order {
		case "", swarm.UpdateOrderStopFirst, swarm.UpdateOrderStartFirst:
		default:
			return errdefs.Invalid("invalid update order %q: use stop-first or start-first", uc.Order)
		}
		if uc.Delay < 0 || uc.Monitor < 0 || uc.MaxFailureRatio < 0 || uc.MaxFailureRatio > 1 {
			return errdefs.Invalid("invalid update config: delay and monitor must not be negative and the failure ratio must be between 0 and 1")
		}
	}
	// The scheduler's own rules: what the API accepts is what it honours.
	if p := spec.TaskTemplate.Placement; p != nil {
		if _, err := scheduler.ParseConstraints(p.Constraints); err != nil {
			return errdefs.Invalid("%v", err)
		}
		if err := scheduler.ValidatePreferences(p.Preferences); err != nil {
			return errdefs.Invalid("%v", err)
		}
	}
	return nil
}

func (m *Manager) serviceByName(name string) *state.Service {
	for _, s := range m.store.Services() {
		if s.Spec.Name == name {
			return s
		}
	}
	return nil
}

// CreateService stores a new service; the orchestrators take it from there.
func (m *Manager) CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, error) {
	if err := m.requireLeader(); err != nil {
		return "", err
	}
	if err := validateServiceSpec(&spec); err != nil {
		return "", err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	v := m.store.View()
	if err := attachNetworks(v, &spec); err != nil {
		return "", err
	}
	if err := attachSecretsConfigs(v, &spec); err != nil {
		return "", err
	}
	if spec.Name == "" {
		spec.Name = randomName()
	}
	if s := m.serviceByName(spec.Name); s != nil {
		return "", errdefs.Conflict("name conflicts with an existing object: service %s already exists (ID %s); choose another --name or remove it first", spec.Name, s.ID)
	}
	ep, err := endpointFor(v, "", spec, nil)
	if err != nil {
		return "", err
	}
	s := &state.Service{SpecVersion: 1}
	s.ID = ids.New()
	s.Spec = spec
	s.Endpoint = ep
	if err := m.propose(ctx, state.NewOp(state.TableServices, state.ActionCreate, s, 0)); err != nil {
		return "", err
	}
	m.kickOrchestrator()
	return s.ID, nil
}

// UpdateService replaces a service's spec (or, with rollback, restores
// the previous one). A changed task template starts a rolling update.
func (m *Manager) UpdateService(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec, rollback bool) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	cur := m.store.Service(id)
	if cur == nil {
		return errdefs.NotFound("service %s not found", id)
	}
	if cur.Version.Index != version {
		return errdefs.Conflict("update out of sequence: service %s is at version %d, not %d; inspect it again and retry", id, cur.Version.Index, version)
	}
	u := cur.Copy()
	if rollback {
		if cur.PreviousSpec == nil {
			return errdefs.Invalid("service %s has no previous spec to roll back to", id)
		}
		spec = *cur.PreviousSpec
	}
	if err := validateServiceSpec(&spec); err != nil {
		return err
	}
	v := m.store.View()
	if err := attachNetworks(v, &spec); err != nil {
		return err
	}
	if err := attachSecretsConfigs(v, &spec); err != nil {
		return err
	}
	if spec.Name != cur.Spec.Name {
		return errdefs.Invalid("renaming services is not supported")
	}
	if (spec.Mode.Global != nil) != (cur.Spec.Mode.Global != nil) {
		return errdefs.Invalid("service mode change is not allowed")
	}
	ep, err := endpointFor(v, id, spec, &cur.Endpoint)
	if err != nil {
		return err
	}
	u.Endpoint = ep
	// Tasks are remade when what they run changes, or the ports they must
	// expose; published ports alone only move the mesh's listeners.
	sameTasks := sameJSON(spec.TaskTemplate, cur.Spec.TaskTemplate) &&
		slices.Equal(targetPorts(spec.EndpointSpec), targetPorts(cur.Spec.EndpointSpec))
	switch {
	case sameTasks:
		prev := cur.Spec
		u.PreviousSpec, u.Spec = &prev, spec // same tasks: no new version
		u.PreviousSpecVersion = cur.SpecVersion
	case rollback:
		u.RollBack()
	default:
		u.NextSpec(spec)
	}
	if !sameTasks {
		now := time.Now().UTC()
		st := swarm.UpdateStateUpdating
		msg := "update in progress"
		if rollback {
			st, msg = swarm.UpdateStateRollbackStarted, "manually requested rollback"
		}
		u.UpdateStatus = &swarm.UpdateStatus{State: st, StartedAt: &now, Message: msg}
	}
	if err := m.propose(ctx, state.NewOp(state.TableServices, state.ActionUpdate, u, version)); err != nil {
		return err
	}
	m.kickOrchestrator()
	return nil
}

// RemoveService deletes a service; its tasks are shut down and removed.
func (m *Manager) RemoveService(ctx context.Context, id string) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	s := m.store.Service(id)
	if s == nil {
		return errdefs.NotFound("service %s not found", id)
	}
	ops := []state.Op{state.NewOp(state.TableServices, state.ActionDelete, s, 0)}
	for _, t := range m.store.TasksByService(id) {
		if t.DesiredState != swarm.TaskStateRemove {
			ops = append(ops, state.NewPatch(state.TableTasks, t.ID, state.PatchTaskShutdown,
				state.TaskShutdown{Desired: swarm.TaskStateRemove, Reason: state.ReasonRemoved}))
		}
	}
	if err := m.proposeChunked(ctx, ops); err != nil {
		return err
	}
	m.kickOrchestrator()
	return nil
}

// Services returns every service, with task counts when asked.
func (m *Manager) Services(withStatus bool) []swarm.Service {
	sv := m.store.View() // services, nodes and tasks of one moment
	services := sv.Services()
	out := make([]swarm.Service, 0, len(services))
	var readyNodes map[string]bool
	if withStatus {
		readyNodes = map[string]bool{}
		for _, n := range sv.Nodes() {
			if n.Status.State == swarm.NodeStateReady {
				readyNodes[n.ID] = true
			}
		}
	}
	for _, s := range services {
		w := s.Copy().Service
		w.Spec.Labels = wireLabels(w.Spec.Labels)
		if withStatus {
			st := &swarm.ServiceStatus{}
			for _, t := range sv.TasksByService(s.ID) {
				// A task on a Down node is not counted: nobody knows it runs.
				if t.DesiredState == swarm.TaskStateRunning && (t.NodeID == "" || readyNodes[t.NodeID]) {
					st.DesiredTasks++
					if t.Status.State == swarm.TaskStateRunning {
						st.RunningTasks++
					}
				}
			}
			if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
				st.DesiredTasks = *r.Replicas
			}
			w.ServiceStatus = st
		}
		out = append(out, w)
	}
	return out
}

// Tasks returns every task; upToDateOnly keeps those of the current spec.
func (m *Manager) Tasks(upToDateOnly bool) []swarm.Task {
	sv := m.store.View()
	tasks := sv.Tasks()
	out := make([]swarm.Task, 0, len(tasks))
	nets := map[string]swarm.Network{}
	for _, t := range tasks {
		if upToDateOnly {
			if s := sv.Service(t.ServiceID); s == nil || s.SpecVersion != t.SpecVersion {
				continue
			}
		}
		out = append(out, wireTask(sv, t, nets))
	}
	return out
}

// wireTask is a task as the API shows it. The state keeps only the ID of
// each network a task is attached to (Raft entries stay small); Docker
// shows the whole network, filled here from the store (a network removed
// since keeps only its ID). nets caches the networks already shaped.
func wireTask(v *state.View, t *state.Task, nets map[string]swarm.Network) swarm.Task {
	w := t.Task
	if len(t.NetworksAttachments) == 0 {
		return w
	}
	w.NetworksAttachments = make([]swarm.NetworkAttachment, len(t.NetworksAttachments))
	for i, a := range t.NetworksAttachments {
		n, ok := nets[a.Network.ID]
		if !ok {
			n = a.Network
			if sn := v.Network(a.Network.ID); sn != nil {
				n = sn.Copy().Network
				n.Spec.Labels = wireLabels(n.Spec.Labels)
			}
			nets[a.Network.ID] = n
		}
		w.NetworksAttachments[i] = swarm.NetworkAttachment{Network: n, Addresses: a.Addresses}
	}
	return w
}

// proposeChunked writes ops in Raft entries of bounded size: one entry per
// op would cap throughput at Raft's entry rate, one huge entry would stall
// followers.
func (m *Manager) proposeChunked(ctx context.Context, ops []state.Op) error {
	return m.raft.ProposeAll(ctx, chunkOps(ops, 2000))
}

// chunkOps splits ops into batches of at most n.
func chunkOps(ops []state.Op, n int) []state.Batch {
	var bs []state.Batch
	for len(ops) > 0 {
		k := min(n, len(ops))
		bs = append(bs, state.Batch{Ops: ops[:k]})
		ops = ops[k:]
	}
	return bs
}

func sameJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
