package cli_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

var cliEvents = []events.Message{
	{Type: "service", Action: "create", Scope: "swarm", Actor: events.Actor{ID: "svc1", Attributes: map[string]string{"name": "web"}},
		Time: 1767322800, TimeNano: 1767322800000000042},
	{Type: "node", Action: "update", Scope: "swarm",
		Actor: events.Actor{ID: "node1", Attributes: map[string]string{"name": "m1", "state.old": "ready", "state.new": "down"}},
		Time:  1767322801, TimeNano: 1767322801500000000},
}

func serveEvents(f *fakeAPI) {
	f.handle("GET /events", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		for _, ev := range cliEvents {
			_ = enc.Encode(ev)
		}
	})
}

func TestEventsPrintsDockersLines(t *testing.T) {
	f := newFakeAPI(t)
	serveEvents(f)
	r := mustRun(t, f.host, "events", "--since", "1767322800", "--until", "1767322900.5", "--filter", "scope=swarm", "-f", "type=service")
	want := time.Unix(0, cliEvents[0].TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00") + " service create svc1 (name=web)\n" +
		time.Unix(0, cliEvents[1].TimeNano).Format("2006-01-02T15:04:05.000000000Z07:00") +
		" node update node1 (name=m1, state.new=down, state.old=ready)\n"
	if r.stdout != want {
		t.Errorf("printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	req := f.only(http.MethodGet, "/events")[0]
	if req.Query.Get("since") != "1767322800" || req.Query.Get("until") != "1767322900.5" {
		t.Errorf("since/until sent as %q/%q", req.Query.Get("since"), req.Query.Get("until"))
	}
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(req.Query.Get("filters")), &filters); err != nil ||
		!filters["scope"]["swarm"] || !filters["type"]["service"] {
		t.Errorf("filters sent as %q", req.Query.Get("filters"))
	}
}

func TestEventsSinceDurationIsATimestamp(t *testing.T) {
	f := newFakeAPI(t)
	serveEvents(f)
	before := time.Now().Add(-10 * time.Minute).Unix()
	mustRun(t, f.host, "events", "--since", "10m", "--until", "0s")
	req := f.only(http.MethodGet, "/events")[0]
	sec, err := strconv.ParseFloat(req.Query.Get("since"), 64)
	if err != nil || int64(sec) < before-1 || int64(sec) > before+60 {
		t.Errorf("--since 10m sent as %q, want the Unix time 10 minutes ago (about %d)", req.Query.Get("since"), before)
	}
}

func TestEventsFormat(t *testing.T) {
	f := newFakeAPI(t)
	serveEvents(f)
	r := mustRun(t, f.host, "events", "--until", "1", "--format", "json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("--format json printed %d lines:\n%s", len(lines), r.stdout)
	}
	var ev events.Message
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev.Actor.Attributes["state.new"] != "down" || ev.TimeNano != cliEvents[1].TimeNano {
		t.Errorf("json line %q: %+v, %v", lines[1], ev, err)
	}
	r = mustRun(t, f.host, "events", "--until", "1", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
	if r.stdout != "service create web\nnode update m1\n" {
		t.Errorf("template printed %q", r.stdout)
	}
	if r := run(t, f.host, "events", "--format", "{{.Nope}}"); r.err == nil || !strings.Contains(r.stderr+r.err.Error(), "Nope") {
		t.Errorf("a bad template: err %v, stderr %q; want an error naming the field", r.err, r.stderr)
	}
}

func TestEventsDaemonRefusal(t *testing.T) {
	f := newFakeAPI(t)
	f.fail("GET /events", http.StatusBadRequest, "invalid filter 'typ'")
	r := run(t, f.host, "events", "--filter", "typ=service")
	if r.err == nil || !strings.Contains(r.stderr+r.err.Error(), "invalid filter 'typ'") {
		t.Errorf("err %v, stderr %q: want the daemon's message", r.err, r.stderr)
	}
	if r := run(t, f.host, "events", "--filter", "service"); r.err == nil || !strings.Contains(r.stderr+r.err.Error(), "expected name=value") {
		t.Errorf("a filter without '=': err %v, stderr %q", r.err, r.stderr)
	}
}

func TestEventsBrokenStreamSaysHowToResume(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("GET /events", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(cliEvents[0])
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // the manager died mid-stream
		}
	})
	r := run(t, f.host, "events")
	if !strings.HasSuffix(r.stdout, " service create svc1 (name=web)\n") {
		t.Errorf("printed %q, want the event before the break", r.stdout)
	}
	if want := "resume through any manager with --since 1767322800.000000043"; r.err == nil || !strings.Contains(r.stderr+r.err.Error(), want) {
		t.Errorf("err %v, stderr %q; want %q", r.err, r.stderr, want)
	}
}
