package state

// View reads the store as of one moment: every read through it sees the
// same state, whatever is applied meanwhile. A loop that reads services,
// then their tasks, then nodes must use one View, or a removal landing in
// between makes it act on a service that no longer exists. Objects are
// shared: do not modify them (Copy first).
type View struct {
	db    *db
	index uint64
}

// View opens a read view of the current state (cheap: the published
// state is never written again).
func (s *Store) View() *View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &View{db: s.current, index: s.index}
}

// Index is the log index of the last batch the view includes.
func (v *View) Index() uint64 { return v.index }

// Get returns the object with the given ID, or nil.
func (v *View) Get(table, id string) Object { return v.db.get(table, id) }

// List returns every object of a table, in ID order.
func (v *View) List(table string) []Object { return v.db.list(table) }

// ListBy returns the objects of a table whose secondary index has value,
// in ID order.
func (v *View) ListBy(table, index, value string) []Object {
	return v.db.listBy(table, index, value)
}

// The store's readers each read a fresh view of their own.

// Cluster returns the one cluster object, or nil before init.
func (s *Store) Cluster() *Cluster { return s.View().Cluster() }

// Node returns a node by full ID, or nil.
func (s *Store) Node(id string) *Node { return s.View().Node(id) }

// Nodes returns every node.
func (s *Store) Nodes() []*Node { return s.View().Nodes() }

// Service returns a service by full ID, or nil.
func (s *Store) Service(id string) *Service { return s.View().Service(id) }

// Services returns every service.
func (s *Store) Services() []*Service { return s.View().Services() }

// Task returns a task by full ID, or nil.
func (s *Store) Task(id string) *Task { return s.View().Task(id) }

// Tasks returns every task.
func (s *Store) Tasks() []*Task { return s.View().Tasks() }

// TasksByService returns the tasks of one service.
func (s *Store) TasksByService(serviceID string) []*Task { return s.View().TasksByService(serviceID) }

// TasksByNode returns the tasks assigned to one node.
func (s *Store) TasksByNode(nodeID string) []*Task { return s.View().TasksByNode(nodeID) }
