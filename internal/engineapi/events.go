package engineapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// EventSource is what GET /events needs from the Backend: the swarm
// events a manager holds in its replicated state. Like other cluster
// reads it fails with errdefs.ErrNotInSwarm outside a swarm and
// errdefs.ErrNotManager on a worker.
type EventSource interface {
	// SwarmEvents returns the retained events whose TimeNano is later than
	// after, oldest first (times strictly increase: a time is a cursor),
	// and a channel closed when more are recorded.
	SwarmEvents(ctx context.Context, after int64) ([]events.Message, <-chan struct{}, error)
	// SwarmEventClock is the TimeNano of the newest event recorded.
	SwarmEventClock(ctx context.Context) (int64, error)
	// Closing is closed when the node stops serving (nil: never): open
	// streams end then rather than hold up its shutdown.
	Closing() <-chan struct{}
}

// eventsRecheck is how often a following stream asks its source again
// when no event came: a manager that was demoted or left ends the stream.
const eventsRecheck = 2 * time.Second

func (a *api) eventRoutes() []route {
	return []route{{method: http.MethodGet, path: "/events", handler: a.events}}
}

// eventsQuery is the parsed query of GET /events.
type eventsQuery struct {
	since, until time.Time
	filter       eventFilter
}

func parseEventsQuery(r *http.Request) (eventsQuery, error) {
	q := r.URL.Query()
	var eq eventsQuery
	var err error
	if eq.since, err = parseUnixTimestamp(q.Get("since")); err != nil {
		return eq, errdefs.Invalid("invalid value for 'since': %v", err)
	}
	if eq.until, err = parseUnixTimestamp(q.Get("until")); err != nil {
		return eq, errdefs.Invalid("invalid value for 'until': %v", err)
	}
	if !eq.until.IsZero() && eq.until.Before(eq.since) {
		return eq, errdefs.Invalid("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))
	}
	if eq.filter, err = parseEventFilter(q.Get("filters")); err != nil {
		return eq, err
	}
	return eq, nil
}

// parseUnixTimestamp reads "seconds" or "seconds.nanoseconds" as dockerd
// does (the CLI turns durations and dates into this form); "" is the zero
// time.
func parseUnixTimestamp(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	secs, frac, hasFrac := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid timestamp %q: give Unix seconds, optionally with a fraction, such as 1700000000.5", v)
	}
	var nsec int64
	if hasFrac && frac != "" {
		if len(frac) > 20 || strings.Trim(frac, "0123456789") != "" {
			return time.Time{}, fmt.Errorf("invalid timestamp %q: the fraction must be digits (nanoseconds)", v)
		}
		frac = (frac + "000000000")[:9]
		nsec, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// events serves GET /events: the retained swarm events from since to
// until, then, unless until is past, new events as they are recorded.
// Without since and until only new events are sent, as dockerd does.
func (a *api) events(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	q, err := parseEventsQuery(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var src EventSource
	cursor := int64(-1) << 62 // before any event
	if q.filter.wantsSwarm() {
		var ok bool
		if src, ok = a.b.(EventSource); !ok {
			return errdefs.Unavailable("this node does not serve swarm events")
		}
		switch {
		case !q.since.IsZero():
			cursor = q.since.UnixNano() - 1
		case q.until.IsZero():
			if cursor, err = src.SwarmEventClock(ctx); err != nil {
				return err
			}
		}
	}
	var timeout <-chan time.Time
	onlyPast := false
	if !q.until.IsZero() {
		wait := time.Until(q.until)
		if onlyPast = wait < 0; !onlyPast {
			timer := time.NewTimer(wait)
			defer timer.Stop()
			timeout = timer.C
		}
	}

	var more <-chan struct{}
	var first []events.Message
	if src != nil {
		// Read once before answering, so a refusal (a worker) is a
		// status, not a stream that ends at once.
		if first, more, err = src.SwarmEvents(ctx, cursor); err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", eventsContentType(r))
	w.WriteHeader(http.StatusOK)
	out := newEventWriter(w, w.Header().Get("Content-Type"))
	out.flush()

	untilNano := q.until.UnixNano()
	send := func(evs []events.Message) (done bool, err error) {
		for _, ev := range evs {
			if !q.until.IsZero() && ev.TimeNano > untilNano {
				return true, nil // times increase: every later event is past until too
			}
			cursor = ev.TimeNano
			if q.filter.include(ev) {
				if err := out.write(ev); err != nil {
					return true, err
				}
			}
		}
		out.flush()
		return false, nil
	}
	if done, err := send(first); done || err != nil || onlyPast {
		return err
	}
	var closing <-chan struct{}
	if c, ok := a.b.(EventSource); ok {
		closing = c.Closing()
	}
	recheck := time.NewTicker(eventsRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-closing:
			return nil
		case <-timeout:
			return nil
		case <-more:
		case <-recheck.C:
		}
		if src == nil {
			continue
		}
		evs, next, err := src.SwarmEvents(ctx, cursor)
		if err != nil {
			return err
		}
		more = next
		if done, err := send(evs); done || err != nil {
			return err
		}
	}
}

// eventsContentType is the stream's media type: one the client lists in
// Accept (JSON Lines, NDJSON or JSON text sequences, by its q-values), or
// application/json as dockerd answers API versions before 1.52.
func eventsContentType(r *http.Request) string {
	best, bestQ := "application/json", 0.0
	for _, part := range strings.Split(strings.Join(r.Header.Values("Accept"), ","), ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		if mt != "application/jsonl" && mt != "application/x-ndjson" && mt != "application/json-seq" {
			continue
		}
		q := 1.0
		for _, p := range fields[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > bestQ {
			best, bestQ = mt, q
		}
	}
	return best
}

// eventWriter writes one JSON record per event, with the record
// separator JSON text sequences need.
type eventWriter struct {
	w   io.Writer
	enc *json.Encoder
	seq bool
}

func newEventWriter(w io.Writer, contentType string) *eventWriter {
	return &eventWriter{w: w, enc: json.NewEncoder(w), seq: contentType == "application/json-seq"}
}

func (e *eventWriter) write(ev events.Message) error {
	if e.seq {
		if _, err := e.w.Write([]byte{0x1e}); err != nil {
			return err
		}
	}
	return e.enc.Encode(ev)
}

func (e *eventWriter) flush() {
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
}
