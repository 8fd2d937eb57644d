package state

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/moby/moby/api/types/events"
)

// snapshotVersion guards the snapshot format; bump it when the layout changes.
const snapshotVersion = 1

type snapshotFile struct {
	Version int
	Index   uint64
	Tables  map[string][]json.RawMessage
	// Events is the retained window of swarm events and EventClock the
	// time of the newest ever recorded (eventlog.go); absent in
	// snapshots of binaries from before events.
	Events     []events.Message `json:",omitempty"`
	EventClock int64            `json:",omitempty"`
}

// Snapshot is a point-in-time view of the store, cheap to take (the
// published state is frozen) and written out later while writes go on.
type Snapshot struct {
	db         *db
	index      uint64
	events     []events.Message
	eventClock int64
}

// Snapshot captures the current state.
func (s *Store) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Snapshot{db: s.current, index: s.index, events: s.events.all(), eventClock: s.events.clock}
}

// WriteSnapshot writes the current state; see Snapshot.Write.
func (s *Store) WriteSnapshot(w io.Writer) error { return s.Snapshot().Write(w) }

// Write writes every table as one JSON document.
func (sn *Snapshot) Write(w io.Writer) error {
	f := snapshotFile{Version: snapshotVersion, Index: sn.index, Tables: map[string][]json.RawMessage{},
		Events: sn.events, EventClock: sn.eventClock}
	for name := range tables {
		for _, o := range sn.db.list(name) {
			b, err := json.Marshal(o)
			if err != nil {
				return err
			}
			f.Tables[name] = append(f.Tables[name], b)
		}
	}
	return json.NewEncoder(w).Encode(&f)
}

// Restore replaces the whole state with a snapshot. The snapshot is
// decoded completely before anything changes, so a bad one changes nothing.
func (s *Store) Restore(r io.Reader) error {
	var f snapshotFile
	if err := json.NewDecoder(r).Decode(&f); err != nil {
		return fmt.Errorf("decode state snapshot: %w", err)
	}
	if f.Version != snapshotVersion {
		return fmt.Errorf("state snapshot has format version %d; this flotilla reads version %d", f.Version, snapshotVersion)
	}
	objs := map[string][]Object{}
	var sp specs
	for name, rows := range f.Tables {
		def, ok := tables[name]
		if !ok {
			return fmt.Errorf("state snapshot has unknown table %q", name)
		}
		for _, row := range rows {
			o, err := decodeObject(def, &sp, name, row, json.Unmarshal)
			if err != nil {
				return fmt.Errorf("state snapshot table %s: %w", name, err)
			}
			if o.GetID() == "" {
				return fmt.Errorf("state snapshot table %s: a row without an ID", name)
			}
			objs[name] = append(objs[name], o)
		}
	}
	d := newDB()
	for name := range tables {
		for _, o := range objs[name] {
			d.put(name, o)
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.work, s.specs = d, sp
	published := d.clone()
	s.mu.Lock()
	s.current = published
	s.index = f.Index
	s.bumpLocked(f.Index)
	s.reshapeLocked()
	s.events.reset(f.Events, f.EventClock)
	for node, ch := range s.nodeWatch {
		close(ch) // everything may have changed
		delete(s.nodeWatch, node)
	}
	s.mu.Unlock()
	return nil
}
