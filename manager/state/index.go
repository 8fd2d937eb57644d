package state

import "github.com/google/btree"

// The store keeps each table in persistent B-trees: one by ID, and one per
// secondary index (a task's service, its node). A batch writes a private
// copy of them (copy-on-write: only the nodes it touches are copied) and
// publishes a frozen clone when it is done, so a reader's View is a
// pointer, never a lock, and no reader sees half a batch. go-memdb did
// this before, at the price of a channel per tree node (its watches,
// which flotilla never used) and of a walk of the whole tree on every
// write touching more than 8,192 nodes: a 50,000-task service spent a
// third of a follower's CPU there.

// item is one entry of a tree: by ID, key is the ID, id empty and obj
// the object; in a secondary index, key is the indexed value, id the
// object's ID and obj nil. An index entry holds no object so that a write
// that keeps the indexed value (a task's status: most writes) leaves the
// index's nodes alone instead of copying them for a new pointer. In a
// wave of 10,000 tasks the trees' node copies took a fifth of a
// follower's CPU, and two of the three trees a status report wrote were
// these indexes.
type item struct {
	key, id string
	obj     Object
}

func itemLess(a, b item) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	return a.id < b.id
}

// treeDegree sets the B-trees' node size: small nodes keep the copies a
// write makes small.
const treeDegree = 16

func newTree() *btree.BTreeG[item] { return btree.NewG(treeDegree, itemLess) }

// indexFunc reads an object's value for a secondary index; "" leaves the
// object out of the index.
type indexFunc func(Object) string

// table is one table's trees.
type table struct {
	byID *btree.BTreeG[item]
	by   map[string]*btree.BTreeG[item]
}

// db is every table. A published db is frozen: nothing writes or clones
// it again.
type db struct {
	tables map[string]*table
}

func newDB() *db {
	d := &db{tables: map[string]*table{}}
	for name, def := range tables {
		t := &table{byID: newTree(), by: map[string]*btree.BTreeG[item]{}}
		for idx := range def.indexes {
			t.by[idx] = newTree()
		}
		d.tables[name] = t
	}
	return d
}

// clone returns a copy that shares every node with d until one of them is
// written. Only the writer's own db is cloned, never a published one.
func (d *db) clone() *db {
	out := &db{tables: make(map[string]*table, len(d.tables))}
	for name, t := range d.tables {
		c := &table{byID: t.byID.Clone(), by: make(map[string]*btree.BTreeG[item], len(t.by))}
		for idx, tr := range t.by {
			c.by[idx] = tr.Clone()
		}
		out.tables[name] = c
	}
	return out
}

func (d *db) get(tableName, id string) Object {
	t := d.tables[tableName]
	if t == nil {
		return nil
	}
	it, ok := t.byID.Get(item{key: id})
	if !ok {
		return nil
	}
	return it.obj
}

// put inserts or replaces obj, moving its secondary index entries.
func (d *db) put(tableName string, obj Object) {
	t := d.tables[tableName]
	id := obj.GetID()
	old, had := t.byID.ReplaceOrInsert(item{key: id, obj: obj})
	for name, f := range tables[tableName].indexes {
		tr := t.by[name]
		nk := f(obj)
		if had {
			prev := f(old.obj)
			if prev == nk {
				continue
			}
			if prev != "" {
				tr.Delete(item{key: prev, id: id})
			}
		}
		if nk != "" {
			tr.ReplaceOrInsert(item{key: nk, id: id})
		}
	}
}

// remove deletes obj and its secondary index entries.
func (d *db) remove(tableName string, obj Object) {
	t := d.tables[tableName]
	id := obj.GetID()
	t.byID.Delete(item{key: id})
	for name, f := range tables[tableName].indexes {
		if k := f(obj); k != "" {
			t.by[name].Delete(item{key: k, id: id})
		}
	}
}

// list returns a table's objects in ID order.
func (d *db) list(tableName string) []Object {
	t := d.tables[tableName]
	if t == nil {
		return nil
	}
	out := make([]Object, 0, t.byID.Len())
	t.byID.Ascend(func(it item) bool {
		out = append(out, it.obj)
		return true
	})
	return out
}

// listBy returns the objects whose index has value, in ID order: the
// index gives their IDs, the table their current versions.
func (d *db) listBy(tableName, index, value string) []Object {
	t := d.tables[tableName]
	if t == nil {
		return nil
	}
	tr := t.by[index]
	if tr == nil {
		return nil
	}
	var out []Object
	tr.AscendGreaterOrEqual(item{key: value}, func(it item) bool {
		if it.key != value {
			return false
		}
		if o, ok := t.byID.Get(item{key: it.id}); ok {
			out = append(out, o.obj)
		}
		return true
	})
	return out
}
