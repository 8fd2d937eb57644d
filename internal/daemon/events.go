package daemon

import (
	"context"

	"github.com/moby/moby/api/types/events"

	"github.com/flotilla-org/flotilla/internal/engineapi"
)

var _ engineapi.EventSource = (*backend)(nil)

// SwarmEvents serves GET /events from this manager's replica: every
// manager holds the same events with the same times (manager/state's
// event log), so a client may follow them through any manager.
func (b *backend) SwarmEvents(ctx context.Context, after int64) ([]events.Message, <-chan struct{}, error) {
	m, err := b.mgr()
	if err != nil {
		return nil, nil, err
	}
	evs, more := m.Store().EventsAfter(after)
	return evs, more, nil
}

// SwarmEventClock is the time of the newest event this manager recorded.
func (b *backend) SwarmEventClock(ctx context.Context) (int64, error) {
	m, err := b.mgr()
	if err != nil {
		return 0, err
	}
	return m.Store().EventClock(), nil
}

// Closing is closed when the daemon stops serving its API: event streams
// end then, so a `docker events` left open does not hold the shutdown.
func (b *backend) Closing() <-chan struct{} { return b.d.closingChan() }

func (d *Daemon) closingChan() chan struct{} {
	d.closingOnce.Do(func() { d.closing = make(chan struct{}) })
	return d.closing
}

// endStreams runs when an API server begins to shut down.
func (d *Daemon) endStreams() {
	ch := d.closingChan()
	d.closeOnce.Do(func() { close(ch) })
}
