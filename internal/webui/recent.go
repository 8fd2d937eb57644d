package webui

import (
	"context"
	"sync"

	"github.com/moby/moby/api/types/events"
)

// recentEvents is how many events the page lists, newest first.
const recentEvents = 20

// recent keeps the newest events read from the manager's event log, with
// a cursor so that each refresh copies only the events recorded since the
// last one (the log holds up to 10,000).
type recent struct {
	mu     sync.Mutex
	cursor int64
	evs    []events.Message // oldest first, at most recentEvents
}

// read returns the newest events, oldest first.
func (r *recent) read(ctx context.Context, src Source) ([]events.Message, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clock, err := src.SwarmEventClock(ctx)
	if err != nil {
		return nil, err
	}
	if clock < r.cursor {
		// Another swarm's log (the node left and joined another):
		// start over.
		r.cursor, r.evs = 0, nil
	}
	more, _, err := src.SwarmEvents(ctx, r.cursor)
	if err != nil {
		return nil, err
	}
	if n := len(more); n > 0 {
		r.cursor = more[n-1].TimeNano
		r.evs = append(r.evs, more[max(0, n-recentEvents):]...)
		r.evs = r.evs[max(0, len(r.evs)-recentEvents):]
	}
	return append([]events.Message(nil), r.evs...), nil
}
