package webui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"
)

// view is what the templates show: plain strings and numbers, built from
// the Engine API's wire types by buildView. html/template escapes every
// field when it is written.
type view struct {
	ServedBy string // hostname of the manager answering
	Updated  string // when this view was built
	// Problem, when set, is shown instead of the cluster (a worker, a
	// node in no swarm, a failed read).
	Problem  string
	Managers []string // addresses of managers, when Problem is set

	Health   health
	Nodes    []nodeRow
	Services []serviceRow
	Events   []eventRow
}

type health struct {
	Managers, Reachable, Quorum int
	Leader                      string // hostname, "" if none is known
	QuorumOK                    bool
	NodesReady, NodesTotal      int
}

type nodeRow struct {
	ID, Hostname, Role, State, Availability, ManagerStatus, Addr string
	Down                                                         bool
	Tasks                                                        []taskRow
	MoreTasks                                                    int // not listed, past tasksShown
}

// tasksShown is how many tasks the page lists per node: a node with
// thousands would make every refresh a large page.
const tasksShown = 50

type taskRow struct {
	Name, State, Desired, Error string
}

type serviceRow struct {
	Name, Mode, Image, Update, UpdateMessage string
	Running, Desired                         uint64
	Converged                                bool
	Labels                                   []string // "key=value", sorted
}

type eventRow struct {
	Time, Type, Action, Name string
}

// input is what one view is built from.
type input struct {
	servedBy string
	now      time.Time
	nodes    []swarm.Node
	services []swarm.Service
	tasks    []swarm.Task
	// updated counts, per service ID, the running tasks on the
	// service's current spec (read only while some update runs).
	updated map[string]uint64
	events  []events.Message // newest last
}

// buildView turns the cluster state into what the page shows.
func buildView(in input) view {
	v := view{ServedBy: in.servedBy, Updated: in.now.UTC().Format("15:04:05 UTC")}
	serviceNames := map[string]string{}
	for _, s := range in.services {
		serviceNames[s.ID] = s.Spec.Name
	}
	tasksByNode := map[string][]taskRow{}
	for _, t := range in.tasks {
		if t.NodeID == "" || t.DesiredState != swarm.TaskStateRunning && !active(t.Status.State) {
			continue // history, or not placed yet
		}
		tasksByNode[t.NodeID] = append(tasksByNode[t.NodeID], taskRow{
			Name:    taskName(serviceNames[t.ServiceID], t),
			State:   string(t.Status.State),
			Desired: string(t.DesiredState),
			Error:   t.Status.Err,
		})
	}
	for _, n := range in.nodes {
		row := nodeRow{
			ID:           n.ID,
			Hostname:     n.Description.Hostname,
			Role:         string(n.Spec.Role),
			State:        string(n.Status.State),
			Availability: string(n.Spec.Availability),
			Addr:         n.Status.Addr,
			Down:         n.Status.State != swarm.NodeStateReady,
			Tasks:        tasksByNode[n.ID],
		}
		slices.SortFunc(row.Tasks, func(a, b taskRow) int { return cmp.Compare(a.Name, b.Name) })
		if len(row.Tasks) > tasksShown {
			row.MoreTasks = len(row.Tasks) - tasksShown
			row.Tasks = row.Tasks[:tasksShown]
		}
		v.Health.NodesTotal++
		if !row.Down {
			v.Health.NodesReady++
		}
		if ms := n.ManagerStatus; ms != nil {
			v.Health.Managers++
			row.ManagerStatus = string(ms.Reachability)
			if ms.Reachability == swarm.ReachabilityReachable {
				v.Health.Reachable++
			}
			if ms.Leader {
				row.ManagerStatus = "leader"
				v.Health.Leader = row.Hostname
			}
		}
		v.Nodes = append(v.Nodes, row)
	}
	slices.SortFunc(v.Nodes, func(a, b nodeRow) int {
		return cmp.Or(cmp.Compare(roleOrder(a.Role), roleOrder(b.Role)), cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.ID, b.ID))
	})
	v.Health.Quorum = v.Health.Managers/2 + 1
	v.Health.QuorumOK = v.Health.Leader != "" && v.Health.Reachable >= v.Health.Quorum

	for _, s := range in.services {
		row := newServiceRow(s)
		if updating(s) {
			row.UpdateMessage = fmt.Sprintf("%d of %d tasks on the new spec", in.updated[s.ID], row.Desired)
		}
		v.Services = append(v.Services, row)
	}
	slices.SortFunc(v.Services, func(a, b serviceRow) int { return cmp.Compare(a.Name, b.Name) })

	for i := len(in.events) - 1; i >= 0; i-- {
		ev := in.events[i]
		v.Events = append(v.Events, eventRow{
			Time:   time.Unix(0, ev.TimeNano).UTC().Format("15:04:05"),
			Type:   string(ev.Type),
			Action: string(ev.Action),
			Name:   cmp.Or(ev.Actor.Attributes["name"], shortID(ev.Actor.ID)),
		})
	}
	return v
}

func newServiceRow(s swarm.Service) serviceRow {
	row := serviceRow{Name: s.Spec.Name, Mode: "replicated"}
	if s.Spec.Mode.Global != nil {
		row.Mode = "global"
	}
	if c := s.Spec.TaskTemplate.ContainerSpec; c != nil {
		row.Image = c.Image
	}
	if st := s.ServiceStatus; st != nil {
		row.Running, row.Desired = st.RunningTasks, st.DesiredTasks
	}
	row.Converged = row.Running == row.Desired
	if u := s.UpdateStatus; u != nil {
		row.Update, row.UpdateMessage = string(u.State), u.Message
	}
	for k, val := range s.Spec.Labels {
		row.Labels = append(row.Labels, k+"="+val)
	}
	slices.Sort(row.Labels)
	return row
}

// updating tells whether a rolling update or rollback of s is under way.
func updating(s swarm.Service) bool {
	u := s.UpdateStatus
	return u != nil && (u.State == swarm.UpdateStateUpdating || u.State == swarm.UpdateStateRollbackStarted)
}

// countUpdated counts the running tasks of each service among tasks (those
// on their service's current spec).
func countUpdated(tasks []swarm.Task) map[string]uint64 {
	n := map[string]uint64{}
	for _, t := range tasks {
		if t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning {
			n[t.ServiceID]++
		}
	}
	return n
}

// active tells whether a task in state st still holds its node.
func active(st swarm.TaskState) bool {
	switch st {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return false
	}
	return true
}

// taskName is the name `service ps` shows: SERVICE.SLOT, or SERVICE.NODE
// for a global service's task.
func taskName(service string, t swarm.Task) string {
	if service == "" {
		service = shortID(t.ServiceID)
	}
	if t.Slot > 0 {
		return fmt.Sprintf("%s.%d", service, t.Slot)
	}
	return service + "." + shortID(t.NodeID)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// roleOrder lists managers before workers.
func roleOrder(role string) int {
	if strings.EqualFold(role, string(swarm.NodeRoleManager)) {
		return 0
	}
	return 1
}
