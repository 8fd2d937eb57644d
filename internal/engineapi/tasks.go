package engineapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func (a *api) taskRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/tasks", handler: a.getTasks},
		{method: http.MethodGet, path: "/tasks/{id}", handler: a.getTask},
		{method: http.MethodGet, path: "/tasks/{id}/logs", handler: a.taskLogs},
	}
}

// TaskName is how Docker names a task: service.slot for replicated
// services, service.nodeID for global ones.
func TaskName(serviceName string, t *swarm.Task) string {
	if t.Slot != 0 {
		return fmt.Sprintf("%s.%d", serviceName, t.Slot)
	}
	return serviceName + "." + t.NodeID
}

type taskFilter struct {
	ids, names, labels, desired []string
	services, nodes             map[string]bool
	upToDate                    bool
}

func (a *api) newTaskFilter(ctx context.Context, args filterArgs) (taskFilter, map[string]swarm.Service, error) {
	if err := args.validate("id", "name", "label", "service", "node", "desired-state", "_up-to-date"); err != nil {
		return taskFilter{}, nil, err
	}
	f := taskFilter{ids: args.get("id"), names: args.get("name"), labels: args.get("label"), desired: args.get("desired-state")}
	for _, d := range f.desired {
		switch d {
		case "running", "shutdown", "accepted":
		default:
			return taskFilter{}, nil, errdefs.Invalid("Invalid desired-state filter: '%s'; use running, shutdown or accepted", d)
		}
	}
	f.upToDate = len(args.get("_up-to-date")) > 0
	services, err := a.b.Services(ctx, false)
	if err != nil {
		return taskFilter{}, nil, err
	}
	byID := servicesByID(services)
	if refs := args.get("service"); len(refs) > 0 {
		f.services = map[string]bool{}
		for _, ref := range refs {
			if s, err := resolve(serviceRefs, services, ref); err == nil {
				f.services[s.ID] = true
			}
		}
	}
	if refs := args.get("node"); len(refs) > 0 {
		// Without the node list, every reference is taken as a node ID,
		// as one that names no node is.
		nodes, _ := a.b.Nodes(ctx)
		f.nodes = map[string]bool{}
		for _, ref := range refs {
			if n, err := resolve(nodeRefs, nodes, ref); err == nil {
				f.nodes[n.ID] = true
			} else {
				f.nodes[ref] = true
			}
		}
	}
	return f, byID, nil
}

func (f taskFilter) match(t *swarm.Task, services map[string]swarm.Service) bool {
	if !matchAnyPrefix(t.ID, f.ids) {
		return false
	}
	if f.services != nil && !f.services[t.ServiceID] {
		return false
	}
	if f.nodes != nil && !f.nodes[t.NodeID] {
		return false
	}
	if len(f.names) > 0 {
		s := services[t.ServiceID]
		if !matchAnyPrefix(TaskName(s.Spec.Name, t), f.names) {
			return false
		}
	}
	if len(f.labels) > 0 && !matchLabels(t.Labels, f.labels) {
		return false
	}
	if len(f.desired) > 0 && !slices.ContainsFunc(f.desired, func(d string) bool { return desiredMatches(d, t.DesiredState) }) {
		return false
	}
	return true
}

func desiredMatches(filter string, st swarm.TaskState) bool {
	switch filter {
	case "running":
		return st == swarm.TaskStateRunning
	case "shutdown":
		return st == swarm.TaskStateShutdown || st == swarm.TaskStateRemove || st == swarm.TaskStateComplete
	case "accepted":
		return st == swarm.TaskStateAccepted
	}
	return false
}

func (a *api) getTasks(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	f, services, err := a.newTaskFilter(r.Context(), args)
	if err != nil {
		return err
	}
	tasks, err := a.b.Tasks(r.Context(), f.upToDate)
	if err != nil {
		return err
	}
	return writeJSONList(w, tasks, func(x *swarm.Task) bool { return f.match(x, services) })
}

func servicesByID(services []swarm.Service) map[string]swarm.Service {
	byID := make(map[string]swarm.Service, len(services))
	for _, s := range services {
		byID[s.ID] = s
	}
	return byID
}

// taskRefs resolves task references. A task's name is swarmkit's,
// <service>.<slot or node ID>.<task ID>, which is also its container's:
// dockerd takes it as a reference, so a name copied from `docker ps` on a
// node works.
func taskRefs(services map[string]swarm.Service) refKind[swarm.Task] {
	return refKind[swarm.Task]{
		Noun: "task",
		ID:   func(t *swarm.Task) string { return t.ID },
		Name: func(t *swarm.Task) string { return TaskName(services[t.ServiceID].Spec.Name, t) + "." + t.ID },
	}
}

// resolveTask finds the task ref names (see resolve).
func (a *api) resolveTask(ctx context.Context, ref string) (swarm.Task, error) {
	tasks, err := a.b.Tasks(ctx, false)
	if err != nil {
		return swarm.Task{}, err
	}
	services, err := a.b.Services(ctx, false)
	if err != nil {
		return swarm.Task{}, err
	}
	return resolve(taskRefs(servicesByID(services)), tasks, ref)
}

func (a *api) getTask(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	t, err := a.resolveTask(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}
