package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// eventsTimeout bounds the arrival of an event on a live stream.
const eventsTimeout = 15 * time.Second

// event is the part of Docker's events.Message these tests read.
type event struct {
	Type, Action string
	Actor        struct {
		ID         string
		Attributes map[string]string
	}
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

func (e event) String() string {
	return e.Type + " " + e.Action + " " + e.Actor.Attributes["name"]
}

// unixArg is t as `--since`/`--until` take it: seconds.nanoseconds.
func unixArg(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }

// parseEvents reads `--format '{{json .}}'` output.
func parseEvents(t *testing.T, out string) []event {
	t.Helper()
	var evs []event
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var ev event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("event line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// named keeps the events whose actor's name starts with prefix.
func named(evs []event, prefix string) []string {
	var out []string
	for _, ev := range evs {
		if strings.HasPrefix(ev.Actor.Attributes["name"], prefix) {
			out = append(out, ev.String())
		}
	}
	return out
}

// inOrder checks that want appear in got in this order (others may come
// in between).
func inOrder(got []string, want ...string) error {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	if i < len(want) {
		return fmt.Errorf("events %q lack %q in order (from %q on)", got, want, want[i])
	}
	return nil
}

// eventStream is a client process following events.
type eventStream struct {
	cmd   *exec.Cmd
	lines chan string
}

// startStream runs a client that follows events and prints one JSON
// record a line; the test ends it.
func startStream(t *testing.T, env []string, bin string, args ...string) *eventStream {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &eventStream{cmd: cmd, lines: make(chan string, 100)}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s %s: stderr: %s", bin, strings.Join(args, " "), stderr.String())
		}
	})
	return s
}

// next waits for the stream's next event; ok is false when it ended.
func (s *eventStream) next(t *testing.T) (ev event, ok bool) {
	t.Helper()
	select {
	case l, open := <-s.lines:
		if !open {
			return ev, false
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("stream line %q: %v", l, err)
		}
		return ev, true
	case <-time.After(eventsTimeout):
		t.Fatalf("no event on the stream within %s", eventsTimeout)
	}
	return ev, false
}

// expect reads the stream until it has seen want, in order, among events
// of names starting with prefix; it returns every event read.
func (s *eventStream) expect(t *testing.T, prefix string, want ...string) []event {
	t.Helper()
	var seen []event
	var got []string
	for len(got) < len(want) || inOrder(got, want...) != nil {
		ev, ok := s.next(t)
		if !ok {
			t.Fatalf("the stream ended; seen %q, want %q", got, want)
		}
		seen = append(seen, ev)
		if strings.HasPrefix(ev.Actor.Attributes["name"], prefix) {
			got = append(got, ev.String())
		}
	}
	return seen
}

// TestEventsDockerCLI follows swarm events with the unmodified docker CLI
// (DOCKER_HOST set to the flotilla socket in each command's environment
// only) and with flotilla's: live, and as a past window that ends.
func TestEventsDockerCLI(t *testing.T) {
	requireE2E(t)
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not on PATH; this test checks `docker events` against flotilla")
	}
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	config := tempDir(t)
	dockerEnv := func(n *node) []string {
		return cleanEnv([]string{"DOCKER_HOST=" + n.host(), "DOCKER_CONFIG=" + config})
	}
	docker := func(n *node, args ...string) cliResult { return run(cliTimeout, dockerEnv(n), dockerBin, args...) }

	start := time.Now()
	live := startStream(t, dockerEnv(m1), dockerBin, "events", "--filter", "scope=swarm", "--since", unixArg(start), "--format", "{{json .}}")
	m1.mustCLI(t, "network", "create", "ev-net")
	m1.mustCLI(t, "service", "create", "--name", "ev-web", "--replicas", "0", "--driver", "process", "--detach", "/bin/true")
	m1.mustCLI(t, "service", "update", "--detach", "--env-add", "A=1", "ev-web")
	m1.mustCLI(t, "service", "rm", "ev-web")
	m1.mustCLI(t, "node", "update", "--availability", "drain", "w1")
	end := time.Now()
	live.expect(t, "ev-", "network create ev-net", "service create ev-web", "service update ev-web", "service remove ev-web")
	// The stream is open and following: a change made now shows up.
	secretFile := filepath.Join(config, "secret")
	if err := os.WriteFile(secretFile, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	m1.mustCLI(t, "secret", "create", "ev-secret", secretFile)
	live.expect(t, "ev-", "secret create ev-secret")

	// The same as a past window: it ends by itself, in order.
	r := docker(m1, "events", "--filter", "scope=swarm", "--since", unixArg(start), "--until", unixArg(end), "--format", "{{json .}}")
	if r.err != nil {
		t.Fatal(r.err)
	}
	window := parseEvents(t, r.stdout)
	if err := inOrder(named(window, "ev-"), "network create ev-net", "service create ev-web", "service update ev-web", "service remove ev-web"); err != nil {
		t.Errorf("docker events --since --until: %v", err)
	}
	for i, ev := range window {
		if ev.Scope != "swarm" || ev.Time != ev.TimeNano/1e9 || ev.Actor.ID == "" {
			t.Errorf("event %+v: want scope swarm, an actor ID and time = timeNano in seconds", ev)
		}
		if i > 0 && ev.TimeNano <= window[i-1].TimeNano {
			t.Errorf("event %d (%v) at %d is not after the one before it at %d", i, ev, ev.TimeNano, window[i-1].TimeNano)
		}
	}

	nodeUpdate := "node update " + w1.id + " availability.new=drain availability.old=active"
	var nodeEvents []string
	for _, ev := range window {
		if ev.Type == "node" {
			a := ev.Actor.Attributes
			nodeEvents = append(nodeEvents, fmt.Sprintf("%s %s %s availability.new=%s availability.old=%s", ev.Type, ev.Action, ev.Actor.ID, a["availability.new"], a["availability.old"]))
		}
	}
	if err := inOrder(nodeEvents, nodeUpdate); err != nil {
		t.Errorf("docker node update --availability drain: %v", err)
	}

	// docker's default line: TIME TYPE ACTION ID (attributes).
	r = docker(m1, "events", "--filter", "type=service", "--filter", "event=create", "--since", unixArg(start), "--until", unixArg(end))
	if r.err != nil {
		t.Fatal(r.err)
	}
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 1 ||
		!strings.Contains(lines[0], " service create ") || !strings.HasSuffix(lines[0], " (name=ev-web)") {
		t.Errorf("docker events --filter type=service --filter event=create printed:\n%s\nwant one 'TIME service create ID (name=ev-web)' line", r.stdout)
	}

	// flotilla's own CLI, with --since as a duration. As in dockerd,
	// network=ev- matches any actor named ev-…; type narrows it.
	out := m1.mustCLI(t, "events", "--since", "10m", "--until", unixArg(end), "--filter", "type=network", "--filter", "network=ev-", "--format", "json")
	if got := named(parseEvents(t, out), "ev-"); strings.Join(got, ",") != "network create ev-net" {
		t.Errorf("flotilla events --filter network=ev-: %q, want the network's creation only", got)
	}

	// Local scope: flotilla has no engine events; the stream is empty,
	// on any node.
	for _, n := range []*node{m1, w1} {
		r = docker(n, "events", "--filter", "scope=local", "--since", unixArg(start), "--until", unixArg(end))
		if r.err != nil || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("docker events --filter scope=local on %s: %v, printed %q; want nothing", n, r.err, r.stdout)
		}
	}
	// A worker holds no cluster state: refused as other swarm reads.
	r = docker(w1, "events", "--since", unixArg(start), "--until", unixArg(end))
	if r.err == nil || !strings.Contains(r.stderr, "not a swarm manager") {
		t.Errorf("docker events on a worker: %v; want the 'not a swarm manager' refusal", r.err)
	}

	// Bad requests: 400 with dockerd's messages.
	for _, tc := range []struct{ query, want string }{
		{"since=yesterday", "invalid value for 'since'"},
		{"until=1.x", "invalid value for 'until'"},
		{"since=20&until=10", "cannot be after"},
		{"filters=" + url.QueryEscape(`{"type":`), "invalid filter"},
		{"filters=" + url.QueryEscape(`{"typ":{"service":true}}`), "invalid filter 'typ'"},
	} {
		code, body, err := m1.apiRequest("GET", "/v1.47/events?"+tc.query, nil)
		if err != nil || code != 400 || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET /events?%s: %d %s (%v); want 400 saying %q", tc.query, code, body, err, tc.want)
		}
	}
	if r := docker(m1, "events", "--filter", "typ=service", "--until", unixArg(end)); r.err == nil || !strings.Contains(r.stderr, "invalid filter 'typ'") {
		t.Errorf("docker events --filter typ=service: %v; want invalid filter 'typ'", r.err)
	}

	// A daemon stops promptly with an events client attached (its HTTP
	// shutdown would otherwise wait 5 s for the stream), and the client's
	// stream ends.
	stopStart := time.Now()
	m1.Stop()
	if took := time.Since(stopStart); took >= streamStopBound {
		t.Errorf("stopping m1 with docker events attached took %s, want under %s", took.Round(time.Millisecond), streamStopBound)
	}
	for {
		if _, ok := live.next(t); !ok {
			break
		}
	}
}

// streamStopBound is under the 5 s the daemon's API shutdown waits for
// open requests before it gives up on them.
const streamStopBound = 4 * time.Second

// TestEventsSurviveLeaderKill follows events through the leader of three
// managers, kills it with SIGKILL, makes more changes, and reconnects to
// another manager with since = the last event seen: every event arrives,
// none twice. Every manager, the restarted one included, holds the same
// events with the same times.
func TestEventsSurviveLeaderKill(t *testing.T) {
	c := newCluster(t, 3, 0)
	leader := c.mustLeader(c.managers[0])
	survivor := c.otherManagers(leader)[0]
	start := time.Now()

	follow := func(n *node, since string) *eventStream {
		return startStream(t, cleanEnv(nil), flotillaBin, "-H", n.host(), "events", "--since", since,
			"--filter", "type=service", "--filter", "event=create", "--format", "json")
	}
	s := follow(leader, unixArg(start))
	leader.mustCLI(t, "service", "create", "--name", "ev-a", "--replicas", "0", "--driver", "process", "--detach", "/bin/true")
	leader.mustCLI(t, "service", "create", "--name", "ev-b", "--replicas", "0", "--driver", "process", "--detach", "/bin/true")
	seen := s.expect(t, "ev-", "service create ev-a", "service create ev-b")
	last := seen[len(seen)-1].TimeNano

	leader.Kill9()
	if _, ok := s.next(t); ok {
		t.Fatal("the stream through the killed leader went on")
	}
	// The survivors see the leader go Down: a node event says so.
	eventually(t, downTimeout, func() error {
		out, _, err := survivor.CLI("events", "--since", unixArg(start), "--until", unixArg(time.Now()),
			"--filter", "type=node", "--filter", "node="+leader.id, "--format", `{{.Action}} {{index .Actor.Attributes "state.new"}}`)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "update down\n") {
			return fmt.Errorf("events of node %s: %q; want an update to state down", leader, out)
		}
		return nil
	})
	// Changes the client misses while it is away.
	for _, name := range []string{"ev-c", "ev-d"} {
		eventually(t, convergeTimeout, func() error {
			_, _, err := survivor.CLI("service", "create", "--name", name, "--replicas", "0", "--driver", "process", "--detach", "/bin/true")
			return err
		})
	}

	// Reconnect to a survivor with since just after the last event seen.
	s2 := follow(survivor, unixArg(time.Unix(0, last+1)))
	seen = append(seen, s2.expect(t, "ev-", "service create ev-c", "service create ev-d")...)
	if got := named(seen, "ev-"); strings.Join(got, ",") != "service create ev-a,service create ev-b,service create ev-c,service create ev-d" {
		t.Errorf("events across the leader change: %q; want each creation once, in order", got)
	}

	// The restarted leader replays the log: its window is the survivors'.
	leader.Start()
	window := func(n *node) (string, error) {
		out, _, err := n.CLI("events", "--since", unixArg(start), "--until", unixArg(time.Now()), "--filter", "type=service", "--filter", "event=create", "--format", "{{.TimeNano}} {{.Action}} {{.Actor.ID}}")
		return out, err
	}
	want, err := window(survivor)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(want, "\n") != 4 {
		t.Errorf("survivor's window:\n%s\nwant the four creations", want)
	}
	for _, n := range c.managers {
		eventually(t, convergeTimeout, func() error {
			got, err := window(n)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s's events:\n%s\n%s's:\n%s", n, got, survivor, want)
			}
			return nil
		})
	}
}
