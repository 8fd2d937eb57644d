package state

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Object is what every table holds.
type Object interface {
	GetID() string
	GetMeta() *swarm.Meta
}

// GetMeta returns the object's version and timestamps.
func (c *Cluster) GetMeta() *swarm.Meta { return &c.Meta }

// GetMeta returns the object's version and timestamps.
func (n *Node) GetMeta() *swarm.Meta { return &n.Meta }

// Table names.
const (
	TableCluster = "cluster"
	TableNodes   = "nodes"
)

type tableDef struct {
	newObj func() Object
	// indexes are the table's secondary indexes by name (ListBy).
	indexes map[string]indexFunc
}

// tables is the registry of object kinds; a new kind (services, tasks)
// registers here and gets create/update/delete, versions and snapshots.
var tables = map[string]tableDef{
	TableCluster: {newObj: func() Object { return &Cluster{} }},
	TableNodes:   {newObj: func() Object { return &Node{} }},
}

// Store is the in-memory state. Reads are snapshots (index.go); writes
// come only through Apply, in log order.
type Store struct {
	// writeMu serialises writers (Apply, Restore); work is theirs alone.
	writeMu sync.Mutex
	work    *db
	specs   specs // tasks share equal specs (intern.go)

	mu      sync.Mutex
	current *db // published: frozen
	index   uint64
	changed chan struct{}
	// reshaped is closed at the next batch that changes more than how far
	// tasks have got towards running (reshape.go).
	reshaped chan struct{}
	// nodeWatch wakes waiters on one node's tasks only, so a thousand
	// nodes' assignment long-polls do not all wake on every write.
	nodeWatch map[string]chan struct{}
	// events is the retained window of swarm events (eventlog.go).
	events eventLog
}

// NewStore returns an empty store.
func NewStore() *Store {
	work := newDB()
	return &Store{work: work, current: work.clone(), changed: make(chan struct{}), reshaped: make(chan struct{}), nodeWatch: map[string]chan struct{}{},
		events: newEventLog(DefaultEventRetention)}
}

// Action is what an Op does to its object.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
	// ActionPatch changes some fields of the current object (see patch.go),
	// so writers of different fields never undo each other's writes.
	ActionPatch Action = "patch"
)

// Op is one object write inside a Batch.
type Op struct {
	Table  string
	Action Action
	ID     string
	// ExpectVersion, when non-zero, must equal the object's current version
	// or the whole batch is refused: optimistic concurrency, as Docker's
	// ?version= parameter.
	ExpectVersion uint64          `json:",omitempty"`
	Object        json.RawMessage `json:",omitempty"`
	// Patch names the patch of an ActionPatch op; Object is its argument.
	Patch string `json:",omitempty"`
}

// Batch is the unit of replication: all of its ops apply or none do.
type Batch struct {
	Ops []Op
	// Time is the proposer's clock, so every replica stamps the same time.
	Time time.Time
}

// NewOp encodes obj into an Op.
func NewOp(table string, action Action, obj Object, expectVersion uint64) Op {
	op := Op{Table: table, Action: action, ID: obj.GetID(), ExpectVersion: expectVersion}
	if action != ActionDelete {
		b, err := marshalJSON(obj)
		if err != nil {
			panic(err)
		}
		op.Object = b
	}
	return op
}

// Apply applies a batch at the given log index. It is deterministic: every
// replica returns the same error for the same batch and state.
func (s *Store) Apply(index uint64, b Batch) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// A refused batch changes nothing: the writer goes back to this copy.
	before := s.work.clone()
	touched := map[string]bool{}
	var evs []events.Message
	reshaped := false
	for _, op := range b.Ops {
		// The error reaches users as is (e.g. a stale version on update):
		// it names the object, so no batch-internal position is added.
		c, err := applyOp(s.work, &s.specs, index, b.Time, op, touched)
		if err != nil {
			s.work = before
			return err
		}
		reshaped = reshaped || reshapes(s.work, c)
		if c.table != "" && c.table != TableTasks {
			if ev, ok := eventOf(c); ok {
				evs = append(evs, ev)
			}
		}
	}
	published := s.work.clone()
	// Publish under mu so a Snapshot never sees content newer than its index.
	s.mu.Lock()
	s.current = published
	s.bumpLocked(index)
	if reshaped {
		s.reshapeLocked()
	}
	s.events.record(b.Time, evs)
	for node := range touched {
		if ch, ok := s.nodeWatch[node]; ok {
			close(ch)
			delete(s.nodeWatch, node)
		}
	}
	s.mu.Unlock()
	return nil
}

// NodeTasksChanged returns a channel closed at the next write that touches
// a task assigned (before or after the write) to nodeID.
func (s *Store) NodeTasksChanged(nodeID string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.nodeWatch[nodeID]
	if !ok {
		ch = make(chan struct{})
		s.nodeWatch[nodeID] = ch
	}
	return ch
}

func (s *Store) bumpLocked(index uint64) {
	if index > s.index {
		s.index = index
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// applyOp applies one op and returns what it changed (a zero change when
// nothing did).
func applyOp(d *db, sp *specs, index uint64, now time.Time, op Op, touched map[string]bool) (change, error) {
	def, ok := tables[op.Table]
	if !ok {
		return change{}, errdefs.Invalid("unknown table %q", op.Table)
	}
	if op.ID == "" {
		return change{}, errdefs.Invalid("%s: empty ID", op.Table)
	}
	cur := d.get(op.Table, op.ID)
	if t, ok := cur.(*Task); ok && t.NodeID != "" {
		touched[t.NodeID] = true
	}
	if op.ExpectVersion != 0 && (cur == nil || cur.GetMeta().Version.Index != op.ExpectVersion) {
		if cur == nil {
			return change{}, errdefs.NotFound("%s %s not found", singular(op.Table), op.ID)
		}
		return change{}, errdefs.Conflict("update out of sequence: %s %s is at version %d, not %d; inspect it again and retry",
			singular(op.Table), op.ID, cur.GetMeta().Version.Index, op.ExpectVersion)
	}
	switch op.Action {
	case ActionPatch:
		if cur == nil {
			return change{}, nil // the object went away meanwhile: nothing to patch
		}
		obj, ok, err := applyPatch(cur, op)
		if err != nil || !ok {
			return change{}, err // !ok: the patch no longer applies (e.g. state moved on)
		}
		m := obj.GetMeta()
		m.UpdatedAt = now
		m.Version.Index = index
		stampNodeState(cur, obj, now)
		if t, ok := obj.(*Task); ok {
			if op.Patch == PatchTaskStatus || op.Patch == PatchTaskAssign {
				t.StatusAt = now
			}
			if t.NodeID != "" {
				touched[t.NodeID] = true
			}
		}
		d.put(op.Table, obj)
		return change{op.Table, op.Action, cur, obj}, nil
	case ActionDelete:
		if cur == nil {
			return change{}, errdefs.NotFound("%s %s not found", singular(op.Table), op.ID)
		}
		d.remove(op.Table, cur)
		return change{op.Table, op.Action, cur, nil}, nil
	case ActionCreate, ActionUpdate:
		if op.Action == ActionCreate && cur != nil {
			return change{}, errdefs.Conflict("%s %s already exists", singular(op.Table), op.ID)
		}
		if op.Action == ActionUpdate && cur == nil {
			return change{}, errdefs.NotFound("%s %s not found", singular(op.Table), op.ID)
		}
		obj, err := decodeObject(def, sp, op.Table, op.Object, unmarshalJSON)
		if err != nil {
			return change{}, errdefs.Invalid("%s %s: %v", singular(op.Table), op.ID, err)
		}
		if obj.GetID() != op.ID {
			return change{}, errdefs.Invalid("%s: object ID %q does not match op ID %q", op.Table, obj.GetID(), op.ID)
		}
		m := obj.GetMeta()
		if cur != nil {
			m.CreatedAt = cur.GetMeta().CreatedAt
		} else {
			m.CreatedAt = now
		}
		m.UpdatedAt = now
		m.Version.Index = index
		stampNodeState(cur, obj, now)
		if t, ok := obj.(*Task); ok && t.NodeID != "" {
			touched[t.NodeID] = true
		}
		d.put(op.Table, obj)
		return change{op.Table, op.Action, cur, obj}, nil
	default:
		return change{}, errdefs.Invalid("unknown action %q", op.Action)
	}
}

// decodeObject decodes an object of a table; tasks share their specs
// with earlier tasks of the same spec.
func decodeObject(def tableDef, sp *specs, table string, b []byte, decode func([]byte, any) error) (Object, error) {
	if table == TableTasks {
		return sp.decodeTask(b, decode)
	}
	obj := def.newObj()
	return obj, decode(b, obj)
}

// stampNodeState records when a node's state changed (Ready, Down...).
func stampNodeState(cur, obj Object, now time.Time) {
	n, ok := obj.(*Node)
	if !ok {
		return
	}
	if old, ok := cur.(*Node); ok && old.Status.State == n.Status.State {
		n.StateSince = old.StateSince
		return
	}
	n.StateSince = now
}

func singular(table string) string {
	if n := len(table); n > 1 && table[n-1] == 's' {
		return table[:n-1]
	}
	return table
}

// Index is the log index of the last applied batch.
func (s *Store) Index() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.index
}

// Changed returns a channel closed at the next applied batch; watch loops
// wait on it and then re-read what they need.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Get returns the object with the given ID, or nil. The object is shared:
// callers must not modify it (Copy first).
func (s *Store) Get(table, id string) Object { return s.View().Get(table, id) }

// List returns every object of a table, in ID order. Shared: do not modify.
func (s *Store) List(table string) []Object { return s.View().List(table) }

// ListBy returns the objects of a table whose secondary index has value.
func (s *Store) ListBy(table, index, value string) []Object {
	return s.View().ListBy(table, index, value)
}
