package state

import (
	"sort"
	"time"

	"github.com/moby/moby/api/types/events"
)

// DefaultEventRetention is how many events each manager keeps: the
// window a client can go back to with `since`.
const DefaultEventRetention = 10000

// eventLog is the retained window of swarm events, oldest first, in a
// ring. It is part of the replicated state: events are derived from the
// applied batches and stamped from the batch's time, so every manager
// holds the same events with the same times, and snapshots carry them to
// managers that restore one.
//
// Event times strictly increase (clock): an event gets its batch's time,
// or 1 ns after the previous event when that is not later (several events
// of one batch; a new leader whose clock is behind). A time is thus a
// cursor: "every event after T" is exact on every manager.
type eventLog struct {
	limit   int
	ring    []events.Message
	head    int // index of the oldest event in ring once it is full
	clock   int64
	changed chan struct{}
}

func newEventLog(limit int) eventLog {
	return eventLog{limit: limit, changed: make(chan struct{})}
}

// record appends the events of one applied batch, stamping their times;
// the caller holds the store's lock.
func (l *eventLog) record(at time.Time, evs []events.Message) {
	for _, ev := range evs {
		t := at.UnixNano()
		if t <= l.clock {
			t = l.clock + 1
		}
		l.clock = t
		ev.Time, ev.TimeNano = t/int64(time.Second), t
		l.push(ev)
	}
	if len(evs) > 0 {
		close(l.changed)
		l.changed = make(chan struct{})
	}
}

func (l *eventLog) push(ev events.Message) {
	if l.limit <= 0 {
		return
	}
	if len(l.ring) < l.limit {
		l.ring = append(l.ring, ev)
		return
	}
	l.ring[l.head] = ev
	l.head = (l.head + 1) % len(l.ring)
}

// all returns the retained events, oldest first, in a new slice.
func (l *eventLog) all() []events.Message {
	out := make([]events.Message, 0, len(l.ring))
	out = append(out, l.ring[l.head:]...)
	return append(out, l.ring[:l.head]...)
}

// at returns the i-th oldest retained event.
func (l *eventLog) at(i int) events.Message { return l.ring[(l.head+i)%len(l.ring)] }

// after returns the retained events later than afterNano, oldest first.
func (l *eventLog) after(afterNano int64) []events.Message {
	n := len(l.ring)
	first := sort.Search(n, func(i int) bool { return l.at(i).TimeNano > afterNano })
	out := make([]events.Message, 0, n-first)
	for i := first; i < n; i++ {
		out = append(out, l.at(i))
	}
	return out
}

// reset replaces the log with restored events.
func (l *eventLog) reset(evs []events.Message, clock int64) {
	if len(evs) > l.limit {
		evs = evs[len(evs)-l.limit:]
	}
	l.ring = append([]events.Message(nil), evs...)
	l.head = 0
	if n := len(evs); n > 0 && evs[n-1].TimeNano > clock {
		clock = evs[n-1].TimeNano
	}
	l.clock = clock
	close(l.changed)
	l.changed = make(chan struct{})
}

// EventsAfter returns the retained swarm events whose TimeNano is later
// than afterNano, oldest first, and a channel closed when the next event
// is recorded. Reading again with the last returned event's TimeNano
// misses nothing and repeats nothing. The events are shared: do not
// modify them.
func (s *Store) EventsAfter(afterNano int64) ([]events.Message, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events.after(afterNano), s.events.changed
}

// EventClock is the TimeNano of the newest event recorded (0 if none):
// EventsAfter(EventClock()) later returns only events recorded since.
func (s *Store) EventClock() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events.clock
}

// OldestEvent is the TimeNano of the oldest retained event, 0 if none.
func (s *Store) OldestEvent() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events.ring) == 0 {
		return 0
	}
	return s.events.at(0).TimeNano
}

// SetEventRetention changes how many events are kept (tests use a few).
func (s *Store) SetEventRetention(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.events.all()
	s.events.limit = n
	s.events.reset(evs, s.events.clock)
}
