package state

import (
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Service is a declared service: what the user wants running.
type Service struct {
	swarm.Service
	// SpecVersion counts changes of the task template; tasks record the
	// one they were made from, so stale tasks are easy to find.
	SpecVersion uint64 `json:",omitempty"`
	// PreviousSpecVersion is the SpecVersion of PreviousSpec, so a rollback
	// recognises the tasks the failed update never touched as current.
	PreviousSpecVersion uint64 `json:",omitempty"`
	// SpecCounter is the highest SpecVersion ever given out: versions are
	// never reused, even after a rollback.
	SpecCounter uint64 `json:",omitempty"`
}

// NextSpec makes spec current, remembering the old one for a rollback.
func (s *Service) NextSpec(spec swarm.ServiceSpec) {
	prev := s.Spec
	s.PreviousSpec, s.PreviousSpecVersion = &prev, s.SpecVersion
	s.Spec = spec
	s.SpecCounter = max(s.SpecCounter, s.SpecVersion) + 1
	s.SpecVersion = s.SpecCounter
}

// RollBack swaps the current and previous specs (and their versions).
func (s *Service) RollBack() {
	prev := *s.PreviousSpec
	cur := s.Spec
	s.Spec, s.PreviousSpec = prev, &cur
	s.SpecCounter = max(s.SpecCounter, s.SpecVersion)
	s.SpecVersion, s.PreviousSpecVersion = s.PreviousSpecVersion, s.SpecVersion
}

// Task is one scheduled instance of a service: a slot of a replicated
// service, or the copy for one node of a global service. Spec is frozen
// from the service at creation; NodeID is set by the scheduler; Status
// is observed state reported by the node and only moves forward;
// DesiredState is set only by managers.
type Task struct {
	swarm.Task
	// SpecVersion is the service's SpecVersion this task runs, so the
	// updater can tell stale tasks from current ones.
	SpecVersion uint64 `json:",omitempty"`
	// ShutdownReason says why the desired state left running (Reason*).
	ShutdownReason string `json:",omitempty"`
	// StatusAt is the leader's clock when the last status report was
	// written: restart delays and update monitors are timed with it, not
	// with the worker's clock in Status.Timestamp.
	StatusAt time.Time `json:",omitempty"`
	// Ports are the service's ports when the task was made: the node
	// exposes the task on their target ports to the routing mesh.
	Ports []swarm.PortConfig `json:",omitempty"`
}

// Why a manager set a task's desired state to shutdown: the restart
// policy applies only to tasks that ended on their own.
const (
	ReasonScale    = "scale"
	ReasonUpdate   = "update"
	ReasonNodeDown = "node-down"
	ReasonDrain    = "drain"
	ReasonEnded    = "ended"
	ReasonRemoved  = "removed"
)

// GetID returns the object's ID.
func (s *Service) GetID() string { return s.ID }

// GetMeta returns the object's version and timestamps.
func (s *Service) GetMeta() *swarm.Meta { return &s.Meta }

// Copy returns a deep copy.
func (s *Service) Copy() *Service {
	var out Service
	mustCopy(s, &out)
	return &out
}

// GetID returns the object's ID.
func (t *Task) GetID() string { return t.ID }

// GetMeta returns the object's version and timestamps.
func (t *Task) GetMeta() *swarm.Meta { return &t.Meta }

// Copy returns a deep copy.
func (t *Task) Copy() *Task {
	var out Task
	mustCopy(t, &out)
	return &out
}

// Table names for services and tasks.
const (
	TableServices = "services"
	TableTasks    = "tasks"
)

func init() {
	tables[TableServices] = tableDef{newObj: func() Object { return &Service{} }}
	tables[TableTasks] = tableDef{
		newObj: func() Object { return &Task{} },
		indexes: map[string]indexFunc{
			"service": func(o Object) string { return o.(*Task).ServiceID },
			"node":    func(o Object) string { return o.(*Task).NodeID },
		},
	}
}

// Service returns a service by full ID, or nil.
func (s *View) Service(id string) *Service {
	if o := s.Get(TableServices, id); o != nil {
		return o.(*Service)
	}
	return nil
}

// Services returns every service.
func (s *View) Services() []*Service {
	objs := s.List(TableServices)
	out := make([]*Service, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*Service))
	}
	return out
}

// Task returns a task by full ID, or nil.
func (s *View) Task(id string) *Task {
	if o := s.Get(TableTasks, id); o != nil {
		return o.(*Task)
	}
	return nil
}

// Tasks returns every task.
func (s *View) Tasks() []*Task { return tasksOf(s.List(TableTasks)) }

// TasksByService returns the tasks of one service.
func (s *View) TasksByService(serviceID string) []*Task {
	return tasksOf(s.ListBy(TableTasks, "service", serviceID))
}

// TasksByNode returns the tasks assigned to one node.
func (s *View) TasksByNode(nodeID string) []*Task {
	return tasksOf(s.ListBy(TableTasks, "node", nodeID))
}

func tasksOf(objs []Object) []*Task {
	out := make([]*Task, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*Task))
	}
	return out
}
