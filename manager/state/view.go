package state

import "github.com/hashicorp/go-memdb"

// View reads the store as of one moment: every read through it sees the
// same state, whatever is applied meanwhile. A loop that reads services,
// then their tasks, then nodes must use one View, or a removal landing in
// between makes it act on a service that no longer exists. Objects are
// shared: do not modify them (Copy first).
type View struct {
	txn   *memdb.Txn
	index uint64
}

// View opens a read view of the current state (cheap: memdb is immutable
// underneath).
func (s *Store) View() *View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &View{txn: s.db.Txn(false), index: s.index}
}

// Index is the log index of the last batch the view includes.
func (v *View) Index() uint64 { return v.index }

// Get returns the object with the given ID, or nil.
func (v *View) Get(table, id string) Object {
	raw, err := v.txn.First(table, "id", id)
	if err != nil || raw == nil {
		return nil
	}
	return raw.(Object)
}

// List returns every object of a table, in ID order.
func (v *View) List(table string) []Object {
	return v.ListBy(table, "id")
}

// ListBy returns the objects of a table whose index matches the value.
func (v *View) ListBy(table, index string, args ...any) []Object {
	it, err := v.txn.Get(table, index, args...)
	if err != nil {
		return nil
	}
	var out []Object
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(Object))
	}
	return out
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
