package engineapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// fakeEvents is a Backend with an EventSource: a list of events with
// strictly increasing times, as a manager's store holds them.
type fakeEvents struct {
	*fakeBackend
	mu      sync.Mutex
	evs     []events.Message
	changed chan struct{}
	err     error
	closing chan struct{}
}

func newFakeEvents() *fakeEvents {
	return &fakeEvents{fakeBackend: newFakeCluster(), changed: make(chan struct{}), closing: make(chan struct{})}
}

// add records an event at time at (seconds since the Unix epoch).
func (f *fakeEvents) add(typ events.Type, action events.Action, id, name string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evs = append(f.evs, events.Message{Type: typ, Action: action, Scope: "swarm",
		Actor: events.Actor{ID: id, Attributes: map[string]string{"name": name}},
		Time:  at.Unix(), TimeNano: at.UnixNano()})
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeEvents) SwarmEvents(_ context.Context, after int64) ([]events.Message, <-chan struct{}, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, nil, f.err
	}
	var out []events.Message
	for _, ev := range f.evs {
		if ev.TimeNano > after {
			out = append(out, ev)
		}
	}
	return out, f.changed, nil
}

func (f *fakeEvents) Closing() <-chan struct{} { return f.closing }

func (f *fakeEvents) SwarmEventClock(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	if len(f.evs) == 0 {
		return 0, nil
	}
	return f.evs[len(f.evs)-1].TimeNano, nil
}

var evT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// history is: service web created, network backend created, service web
// updated, service api created, service web removed, one second apart.
func history() *fakeEvents {
	f := newFakeEvents()
	f.add(events.ServiceEventType, events.ActionCreate, "svc1", "web", evT0)
	f.add(events.NetworkEventType, events.ActionCreate, "net1", "backend", evT0.Add(time.Second))
	f.add(events.ServiceEventType, events.ActionUpdate, "svc1", "web", evT0.Add(2*time.Second))
	f.add(events.ServiceEventType, events.ActionCreate, "svc2", "api", evT0.Add(3*time.Second))
	f.add(events.ServiceEventType, events.ActionRemove, "svc1", "web", evT0.Add(4*time.Second))
	return f
}

func unix(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

func eventsURL(since, until, filters string) string {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if until != "" {
		q.Set("until", until)
	}
	if filters != "" {
		q.Set("filters", filters)
	}
	return "/v1.47/events?" + q.Encode()
}

// lines decodes a finished events stream into "type action name" lines.
func eventLines(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	dec := json.NewDecoder(strings.NewReader(body))
	for dec.More() {
		var ev events.Message
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("decoding the stream %q: %v", body, err)
		}
		out = append(out, fmt.Sprintf("%s %s %s", ev.Type, ev.Action, ev.Actor.Attributes["name"]))
	}
	return out
}

func TestEventsWindowInOrderAndEnds(t *testing.T) {
	h := NewHandler(history())
	for _, tc := range []struct {
		name, since, until, filters string
		want                        []string
	}{
		{"everything", "0", unix(evT0.Add(time.Hour)), "",
			[]string{"service create web", "network create backend", "service update web", "service create api", "service remove web"}},
		{"since and until are inclusive", unix(evT0.Add(time.Second)), unix(evT0.Add(3 * time.Second)), "",
			[]string{"network create backend", "service update web", "service create api"}},
		{"until alone starts at the oldest", "", unix(evT0.Add(time.Second)), "",
			[]string{"service create web", "network create backend"}},
		{"type", "0", unix(evT0.Add(time.Hour)), `{"type":{"network":true}}`, []string{"network create backend"}},
		{"scope swarm", "0", unix(evT0.Add(time.Hour)), `{"scope":{"swarm":true}}`,
			[]string{"service create web", "network create backend", "service update web", "service create api", "service remove web"}},
		{"scope local", "0", unix(evT0.Add(time.Hour)), `{"scope":{"local":true}}`, nil},
		{"event", "0", unix(evT0.Add(time.Hour)), `{"event":{"create":true}}`,
			[]string{"service create web", "network create backend", "service create api"}},
		{"service by name", "0", unix(evT0.Add(time.Hour)), `{"service":{"web":true}}`,
			[]string{"service create web", "service update web", "service remove web"}},
		{"service by ID prefix", "0", unix(evT0.Add(time.Hour)), `{"service":{"svc2":true}}`, []string{"service create api"}},
		{"legacy list form", "0", unix(evT0.Add(time.Hour)), `{"type":["network"]}`, []string{"network create backend"}},
		{"seconds only", "1", fmt.Sprint(evT0.Unix() + 1), "", []string{"service create web", "network create backend"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, h, http.MethodGet, eventsURL(tc.since, tc.until, tc.filters), "")
			wantStatus(t, rec, http.StatusOK)
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json (API 1.47)", ct)
			}
			if got := eventLines(t, rec.Body.String()); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestEventsBadRequests(t *testing.T) {
	h := NewHandler(history())
	for _, tc := range []struct{ target, want string }{
		{eventsURL("yesterday", "", ""), "invalid value for 'since'"},
		{eventsURL("", "12.x", ""), "invalid value for 'until'"},
		{eventsURL("20", "10", ""), "`since` time (20) cannot be after `until` time (10)"},
		{eventsURL("", "", `{"type":`), "invalid filter"},
		{eventsURL("", "", `{"typ":{"service":true}}`), "invalid filter 'typ'"},
		{eventsURL("", "", `{"type":{"task":true}}`), "invalid filter 'type=task'"},
		{eventsURL("", "", `{"scope":{"global":true}}`), "invalid filter 'scope=global'"},
	} {
		rec := serve(t, h, http.MethodGet, tc.target, "")
		wantStatus(t, rec, http.StatusBadRequest)
		if msg := errorMessage(t, rec); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: message %q, want it to say %q", tc.target, msg, tc.want)
		}
	}
}

// A worker holds no swarm events: it refuses as for other cluster reads,
// but a stream asking only for local events is served, empty.
func TestEventsOnAWorker(t *testing.T) {
	f := history()
	f.err = errdefs.ErrNotManager
	h := NewHandler(f)
	rec := serve(t, h, http.MethodGet, eventsURL("0", unix(evT0), ""), "")
	wantStatus(t, rec, http.StatusServiceUnavailable)
	if msg := errorMessage(t, rec); !strings.Contains(msg, "not a swarm manager") {
		t.Errorf("message %q, want it to say the node is not a manager", msg)
	}
	rec = serve(t, h, http.MethodGet, eventsURL("0", unix(evT0), `{"scope":{"local":true}}`), "")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.Len() != 0 {
		t.Errorf("local events on a worker: %q, want none", rec.Body.String())
	}
}

// streamLines reads a live stream's records as they come.
func streamLines(t *testing.T, resp *http.Response) <-chan string {
	t.Helper()
	out := make(chan string, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var ev events.Message
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				out <- "bad record: " + sc.Text()
				return
			}
			out <- fmt.Sprintf("%s %s %s", ev.Type, ev.Action, ev.Actor.Attributes["name"])
		}
	}()
	return out
}

func nextEvent(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return ""
}

func TestEventsFollowsNewEvents(t *testing.T) {
	f := history()
	srv := httptest.NewServer(NewHandler(f))
	defer srv.Close()

	// Without since: only what happens from now on.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+eventsURL("", "", `{"type":{"service":true}}`), nil)
	req.Header.Set("Accept", "application/jsonl, application/x-ndjson;q=0.9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/jsonl" {
		t.Errorf("Content-Type %q, want application/jsonl, the client's first choice", ct)
	}
	got := streamLines(t, resp)
	f.add(events.NetworkEventType, events.ActionCreate, "net2", "front", evT0.Add(10*time.Second))
	f.add(events.ServiceEventType, events.ActionCreate, "svc3", "db", evT0.Add(11*time.Second))
	if l := nextEvent(t, got); l != "service create db" {
		t.Fatalf("first live event %q, want the new service (the network is filtered out, history not sent)", l)
	}

	// With since in the past: the window, then live events.
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+eventsURL(unix(evT0.Add(4*time.Second)), "", ""), nil)
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	got2 := streamLines(t, resp2)
	for _, want := range []string{"service remove web", "network create front", "service create db"} {
		if l := nextEvent(t, got2); l != want {
			t.Fatalf("event %q, want %q", l, want)
		}
	}
	f.add(events.SecretEventType, events.ActionCreate, "sec1", "pw", evT0.Add(12*time.Second))
	if l := nextEvent(t, got2); l != "secret create pw" {
		t.Fatalf("live event %q, want the secret", l)
	}
}

func TestEventsUntilInTheFutureEnds(t *testing.T) {
	f := history()
	until := time.Now().Add(300 * time.Millisecond)
	got := openStream(t, f, unix(until))
	f.add(events.ConfigEventType, events.ActionCreate, "cfg1", "conf", until.Add(-time.Millisecond))
	// until without since: the whole window, as dockerd, then live events.
	for _, want := range []string{"service create web", "network create backend", "service update web",
		"service create api", "service remove web", "config create conf"} {
		if l := nextEvent(t, got); l != want {
			t.Fatalf("event %q, want %q", l, want)
		}
	}
	expectEnd(t, got, 10*time.Second, "at until")
}

// A manager that stops being one (demoted, left) ends its streams rather
// than leaving them open with nothing to come.
func TestEventsStreamEndsWhenTheNodeStopsServing(t *testing.T) {
	f := history()
	got := openStream(t, f, "")
	f.mu.Lock()
	f.err = errdefs.ErrNotManager
	f.mu.Unlock()
	expectEnd(t, got, 5*eventsRecheck, "after the node stopped serving events")
}

func TestEventsStreamEndsWhenTheServerCloses(t *testing.T) {
	f := history()
	got := openStream(t, f, "")
	close(f.closing)
	expectEnd(t, got, eventsRecheck, "after the server began to close")
}

// openStream asks f's API for events (until, if given, as a Unix time)
// and returns the stream's lines; the server and the response are closed
// when the test ends.
func openStream(t *testing.T, f *fakeEvents, until string) <-chan string {
	t.Helper()
	srv := httptest.NewServer(NewHandler(f))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + eventsURL("", until, ""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return streamLines(t, resp)
}

// expectEnd fails unless the stream ends, with no further event, within d.
func expectEnd(t *testing.T, got <-chan string, d time.Duration, when string) {
	t.Helper()
	select {
	case l, ok := <-got:
		if ok {
			t.Fatalf("unexpected event %q", l)
		}
	case <-time.After(d):
		t.Fatalf("the stream was still open %s %s", d, when)
	}
}
