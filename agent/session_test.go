package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// fakeManagers is an in-memory Caller standing for every manager.
type fakeManagers struct {
	mu sync.Mutex

	// heartbeats
	beats  []string                                    // manager of each heartbeat, in order
	hbReqs []nodeapi.HeartbeatRequest                  // what each carried
	fail   map[string]error                            // manager -> error it answers with
	answer func(addr string) nodeapi.HeartbeatResponse // nil: a 10ms period
	after  bool                                        // set once Run returned
	late   []string                                    // calls made after that

	// task session
	fingerprint string
	tasks       []nodeapi.Assignment
	changed     chan struct{} // closed and replaced on every change of the set
	polls       []string      // manager of each assignments poll
	failStatus  int           // fail this many next status sends
	sends       []statusSend
	seen        map[string]swarm.TaskStatus // last status taken per task
}

type statusSend struct {
	addr    string
	updates []nodeapi.TaskStatusUpdate
	err     error
}

func newFakeManagers() *fakeManagers {
	return &fakeManagers{fail: map[string]error{}, changed: make(chan struct{}), seen: map[string]swarm.TaskStatus{}}
}

// wire copies v into out as the real client does: through JSON.
func wire(v, out any) error {
	if out == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func (m *fakeManagers) Call(ctx context.Context, addr, path string, in, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.after {
		m.late = append(m.late, addr+path)
	}
	m.mu.Unlock()
	switch path {
	case nodeapi.PathHeartbeat:
		m.mu.Lock()
		m.beats = append(m.beats, addr)
		m.hbReqs = append(m.hbReqs, in.(nodeapi.HeartbeatRequest))
		err := m.fail[addr]
		resp := nodeapi.HeartbeatResponse{Period: 10 * time.Millisecond}
		if m.answer != nil {
			resp = m.answer(addr)
		}
		m.mu.Unlock()
		if err != nil {
			return err
		}
		return wire(resp, out)
	case nodeapi.PathAssignments:
		req := in.(nodeapi.AssignmentsRequest)
		for {
			m.mu.Lock()
			m.polls = append(m.polls, addr)
			err := m.fail[addr]
			fp, tasks, changed := m.fingerprint, m.tasks, m.changed
			m.mu.Unlock()
			if err != nil {
				return err
			}
			if fp != req.Known {
				return wire(nodeapi.AssignmentsResponse{Fingerprint: fp, Tasks: tasks}, out)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
			}
		}
	case nodeapi.PathTaskStatus:
		req := in.(nodeapi.TaskStatusRequest)
		m.mu.Lock()
		defer m.mu.Unlock()
		s := statusSend{addr: addr, updates: slices.Clone(req.Updates)}
		if m.failStatus > 0 {
			m.failStatus--
			s.err = errdefs.Unavailable("no leader")
		} else if err := m.fail[addr]; err != nil {
			s.err = err
		}
		m.sends = append(m.sends, s)
		if s.err != nil {
			return s.err
		}
		for _, u := range req.Updates {
			m.seen[u.TaskID] = u.Status
		}
		return nil
	}
	return errdefs.NotFound("no handler for %s", path)
}

func (m *fakeManagers) setFail(addr string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.fail, addr)
	} else {
		m.fail[addr] = err
	}
}

func (m *fakeManagers) setAnswer(f func(addr string) nodeapi.HeartbeatResponse) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.answer = f
}

func (m *fakeManagers) setTasks(fp string, tasks ...swarm.Task) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fingerprint, m.tasks = fp, assigned(tasks...)
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *fakeManagers) beatLog() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.beats)
}

func (m *fakeManagers) beatsTo(addr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, b := range m.beats {
		if b == addr {
			n++
		}
	}
	return n
}

func (m *fakeManagers) seenState(id string) swarm.TaskState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[id].State
}

func (m *fakeManagers) sendLog() []statusSend {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sends)
}

func newSession(m *fakeManagers, managers ...string) *Session {
	s := &Session{
		NodeID:   "node-1",
		Addr:     "10.0.0.9:4242",
		Describe: func() swarm.NodeDescription { return swarm.NodeDescription{Hostname: "host-a"} },
		Client:   m,
		Log:      slog.New(slog.DiscardHandler),
	}
	s.SetManagers(managers)
	return s
}

// run starts s.Run and returns a channel closed when it returns; the test's
// cleanup ends it and marks later calls as late.
func run(t *testing.T, s *Session, m *fakeManagers) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
		m.mu.Lock()
		m.after = true
		m.mu.Unlock()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Error("Session.Run did not return after its context ended")
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.late) > 0 {
			t.Errorf("calls after Run returned: %v", m.late)
		}
	})
	return done
}

// after reports the entries of log after index i.
func after[T any](log []T, i int) []T {
	if i+1 >= len(log) {
		return nil
	}
	return log[i+1:]
}

func TestSessionRotatesOnFailure(t *testing.T) {
	m := newFakeManagers()
	m.setFail("m1", errdefs.Unavailable("connection refused"))
	s := newSession(m, "m1", "m2", "m3")
	run(t, s, m)

	eventually(t, "beats to m2", func() bool { return m.beatsTo("m2") >= 3 })
	log := m.beatLog()
	if log[0] != "m1" || log[1] != "m2" {
		t.Fatalf("beats %v: want m1, then m2 at once after m1 failed", log)
	}
	for _, b := range log[1:] {
		if b != "m2" {
			t.Fatalf("beats %v: want the session to stay on m2 while it answers", log)
		}
	}
	if last, mgr, err := s.Status(); last.IsZero() || mgr != "m2" || err != nil {
		t.Errorf("Status() = %v %q %v", last, mgr, err)
	}
	if r := m.hbReqs[0]; r.Addr != "10.0.0.9:4242" || r.Description.Hostname != "host-a" {
		t.Errorf("heartbeat request %+v", r)
	}

	// m2 fails too: on to m3.
	n := len(m.beatLog())
	m.setFail("m2", errdefs.Unavailable("connection reset"))
	eventually(t, "beats to m3", func() bool { return m.beatsTo("m3") >= 2 })
	log = m.beatLog()
	i := slices.Index(after(log, n-1), "m3")
	if rest := after(log, n-1)[:i]; slices.ContainsFunc(rest, func(b string) bool { return b != "m2" }) {
		t.Errorf("beats %v: want only m2 between it failing and m3", log[n:])
	}

	// Every manager fails: the session keeps trying all of them and says so.
	m.setFail("m3", errdefs.Unavailable("down"))
	eventually(t, "Status to report the failure", func() bool {
		_, _, err := s.Status()
		return err != nil
	})
	// m1 is back: the rotation wraps around to it.
	m.setFail("m1", nil)
	eventually(t, "the session to settle on m1", func() bool {
		last, mgr, err := s.Status()
		return mgr == "m1" && err == nil && !last.IsZero()
	})
	eventually(t, "beats to m1 to succeed", func() bool { return m.beatsTo("m1") >= 3 })
}

func TestSessionFollowsManagerList(t *testing.T) {
	m := newFakeManagers()
	s := newSession(m, "m1")
	var mu sync.Mutex
	var lists [][]swarm.Peer
	s.Hooks.Managers = func(ps []swarm.Peer) {
		mu.Lock()
		lists = append(lists, ps)
		mu.Unlock()
		var addrs []string
		for _, p := range ps {
			addrs = append(addrs, p.Addr)
		}
		s.SetManagers(addrs)
	}
	peers := []swarm.Peer{{NodeID: "b", Addr: "m2"}, {NodeID: "c", Addr: "m3"}}
	m.setAnswer(func(addr string) nodeapi.HeartbeatResponse {
		return nodeapi.HeartbeatResponse{Period: 10 * time.Millisecond, Managers: peers}
	})
	run(t, s, m)

	// m1 answered with a list without itself: the session moves to it.
	eventually(t, "beats to m2", func() bool { return m.beatsTo("m2") >= 2 })
	mu.Lock()
	if len(lists) == 0 || !slices.Equal(lists[0], peers) {
		t.Errorf("Managers hook got %v, want %v", lists, peers)
	}
	mu.Unlock()
	if _, mgr, _ := s.Status(); mgr != "m2" && mgr != "m3" {
		t.Errorf("Status manager %q", mgr)
	}
	// From the learned list, failover works.
	m.setFail("m2", errdefs.Unavailable("down"))
	eventually(t, "beats to m3", func() bool { return m.beatsTo("m3") >= 2 })
	if n := m.beatsTo("m1"); n != 1 {
		t.Errorf("%d beats to m1, no longer a manager", n)
	}
}

func TestSessionStopsWhenRemoved(t *testing.T) {
	m := newFakeManagers()
	drv := fake.New()
	h := newExec(t, drv, "")
	s := newSession(m, "m1", "m2")
	s.Executor = h.e
	var mu sync.Mutex
	var removed []error
	var other int
	s.Hooks = Hooks{
		Removed:  func(err error) { mu.Lock(); removed = append(removed, err); mu.Unlock() },
		Managers: func([]swarm.Peer) { mu.Lock(); other++; mu.Unlock() },
		Role:     func(swarm.NodeRole) { mu.Lock(); other++; mu.Unlock() },
	}
	m.setFail("m1", errdefs.Unavailable("down"))
	m.setFail("m2", nodeapi.ErrNodeRemoved)
	done := run(t, s, m)
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Run goes on after the managers refused the node")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(removed) != 1 || !errors.Is(removed[0], nodeapi.ErrNodeRemoved) {
		t.Errorf("Removed hook calls %v, want one with the removal error", removed)
	}
	if other != 0 {
		t.Errorf("%d other hook calls", other)
	}
	if _, _, err := s.Status(); !errdefs.Is(err, errdefs.KindForbidden) {
		t.Errorf("Status error %v", err)
	}
}

// Other errors, Unauthorized and a Forbidden for another reason included,
// are not a removal.
func TestSessionKeepsGoingOnOtherErrors(t *testing.T) {
	for _, err := range []error{
		errdefs.Unauthorized("certificate expired"),
		errdefs.Forbidden("certificate refused: issued for another role"),
	} {
		t.Run(err.Error(), func(t *testing.T) { testSessionKeepsGoing(t, err) })
	}
}

func testSessionKeepsGoing(t *testing.T, fail error) {
	m := newFakeManagers()
	s := newSession(m, "m1")
	removed := make(chan error, 1)
	s.Hooks.Removed = func(err error) { removed <- err }
	m.setFail("m1", fail)
	done := run(t, s, m)
	eventually(t, "a few failed beats", func() bool { return m.beatsTo("m1") >= 3 })
	m.setFail("m1", nil)
	eventually(t, "a beat to succeed", func() bool {
		last, _, err := s.Status()
		return err == nil && !last.IsZero()
	})
	select {
	case <-done:
		t.Fatal("Run returned")
	case err := <-removed:
		t.Fatalf("Removed(%v)", err)
	default:
	}
}

func TestSessionRoleHook(t *testing.T) {
	m := newFakeManagers()
	s := newSession(m, "m1")
	var mu sync.Mutex
	var roles []swarm.NodeRole
	s.Hooks.Role = func(r swarm.NodeRole) { mu.Lock(); roles = append(roles, r); mu.Unlock() }
	role := swarm.NodeRole("")
	m.setAnswer(func(string) nodeapi.HeartbeatResponse {
		return nodeapi.HeartbeatResponse{Period: 10 * time.Millisecond, Role: role}
	})
	run(t, s, m)
	eventually(t, "a few beats", func() bool { return m.beatsTo("m1") >= 3 })
	mu.Lock()
	if len(roles) != 0 {
		t.Errorf("Role hook called with %v for answers naming no role", roles)
	}
	mu.Unlock()

	m.mu.Lock()
	role = swarm.NodeRoleManager
	m.mu.Unlock()
	got := func(r swarm.NodeRole) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(roles, r)
		}
	}
	eventually(t, "the Role hook to get manager", got(swarm.NodeRoleManager))
	m.mu.Lock()
	role = swarm.NodeRoleWorker
	m.mu.Unlock()
	eventually(t, "the Role hook to get worker", got(swarm.NodeRoleWorker))
	mu.Lock()
	defer mu.Unlock()
	i := slices.Index(roles, swarm.NodeRoleWorker)
	if slices.Contains(roles[i:], swarm.NodeRoleManager) {
		t.Errorf("roles %v: manager again after worker", roles)
	}
}

func TestSessionWithoutManagers(t *testing.T) {
	m := newFakeManagers()
	s := newSession(m)
	h := newExec(t, fake.New(), "")
	s.Executor = h.e
	run(t, s, m)
	if _, mgr, _ := s.Status(); mgr != "" {
		t.Errorf("manager %q", mgr)
	}
	// Managers learned later (a join finishing, a restart's saved list).
	s.SetManagers([]string{"m1"})
	eventually(t, "beats once there are managers", func() bool { return m.beatsTo("m1") >= 1 })
}

func TestSessionSetManagersKeepsCurrent(t *testing.T) {
	s := newSession(newFakeManagers(), "a", "b", "c")
	s.next()
	s.next()
	if _, mgr, _ := s.Status(); mgr != "c" {
		t.Fatalf("after two rotations on %q", mgr)
	}
	s.SetManagers([]string{"d", "c"})
	if _, mgr, _ := s.Status(); mgr != "c" {
		t.Errorf("a new list with the current manager moved to %q", mgr)
	}
	s.SetManagers([]string{"x", "y"})
	if _, mgr, _ := s.Status(); mgr != "x" {
		t.Errorf("a list without the current manager starts at %q", mgr)
	}
	s.next()
	s.next()
	if _, mgr, _ := s.Status(); mgr != "x" {
		t.Errorf("rotation over two managers ended on %q", mgr)
	}
	s.SetManagers(nil)
	if addr, ok := s.target(); ok {
		t.Errorf("target %q without managers", addr)
	}
}

func TestSessionTaskLoop(t *testing.T) {
	m := newFakeManagers()
	drv := fake.New()
	h := newExec(t, drv, "")
	s := newSession(m, "m1")
	s.Executor = h.e
	tasks := []swarm.Task{
		mkTask("t1", 1, swarm.TaskStateRunning),
		mkTask("t2", 2, swarm.TaskStateRunning),
		mkTask("t3", 3, swarm.TaskStateRunning),
	}
	m.setTasks("v1", tasks...)
	run(t, s, m)

	allSeen := func(st swarm.TaskState) func() bool {
		return func() bool {
			for _, tk := range tasks {
				if m.seenState(tk.ID) != st {
					return false
				}
			}
			return true
		}
	}
	eventually(t, "the managers to see every task running", allSeen(swarm.TaskStateRunning))
	sends := m.sendLog()
	if !slices.ContainsFunc(sends, func(s statusSend) bool { return len(s.updates) == 3 }) {
		t.Errorf("no send carried the three tasks' reports together: %v", sends)
	}
	for _, snd := range sends {
		ids := map[string]bool{}
		for _, u := range snd.updates {
			if ids[u.TaskID] {
				t.Errorf("a batch carries task %s twice", u.TaskID)
			}
			ids[u.TaskID] = true
		}
		if snd.addr != "m1" {
			t.Errorf("report sent to %q", snd.addr)
		}
	}
	if n := startCount(drv); n != 3 {
		t.Errorf("%d starts", n)
	}

	// Sends fail for a while (no leader): the reports come again, the
	// newest status of each task winning.
	m.mu.Lock()
	m.failStatus = 2
	m.mu.Unlock()
	before := len(m.sendLog())
	viewed := func(st swarm.TaskState, ts ...swarm.Task) []swarm.Task {
		out := make([]swarm.Task, 0, len(ts))
		for _, tk := range ts {
			out = append(out, withObserved(tk, st))
		}
		return out
	}
	m.setTasks("v2", append(viewed(swarm.TaskStateRunning, tasks[1:]...), withObserved(withDesired(tasks[0], swarm.TaskStateShutdown), swarm.TaskStateRunning))...)
	eventually(t, "the managers to see t1 shut down", func() bool { return m.seenState("t1") == swarm.TaskStateShutdown })
	sends = m.sendLog()[before:]
	var failed int
	for _, snd := range sends {
		if snd.err != nil {
			failed++
			if !slices.ContainsFunc(snd.updates, func(u nodeapi.TaskStatusUpdate) bool { return u.TaskID == "t1" }) {
				t.Errorf("failed send without t1: %+v", snd.updates)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d failed sends, want 2: %+v", failed, sends)
	}
	if m.seenState("t2") != swarm.TaskStateRunning || m.seenState("t3") != swarm.TaskStateRunning {
		t.Error("other tasks changed")
	}

	// A new set whose view of the tasks is older than the node's (reports
	// a failed leader took and never wrote): the node sends them again.
	before = len(m.sendLog())
	m.setTasks("v3", append(viewed(swarm.TaskStateAssigned, tasks[1:]...), withObserved(withDesired(tasks[0], swarm.TaskStateShutdown), swarm.TaskStateRunning))...)
	eventually(t, "the missed reports to be sent again", func() bool {
		got := map[string]swarm.TaskState{}
		for _, snd := range m.sendLog()[before:] {
			if snd.err == nil {
				for _, u := range snd.updates {
					got[u.TaskID] = u.Status.State
				}
			}
		}
		return got["t1"] == swarm.TaskStateShutdown && got["t2"] == swarm.TaskStateRunning && got["t3"] == swarm.TaskStateRunning
	})
	if n := startCount(drv); n != 3 {
		t.Errorf("%d starts", n)
	}

	// Tasks dropped from the set are removed from the node.
	m.setTasks("v4", viewed(swarm.TaskStateRunning, tasks[1:]...)...)
	eventually(t, "t1 removed", func() bool {
		_, existing, _ := drv.Stats()
		return existing == 2
	})
}

// The task session follows the heartbeat's manager: when that moves, the
// assignment poll and the reports move with it.
func TestSessionTaskLoopFollowsManager(t *testing.T) {
	m := newFakeManagers()
	drv := fake.New()
	h := newExec(t, drv, "")
	s := newSession(m, "m1", "m2")
	s.Executor = h.e
	down := errdefs.Unavailable("m1 is down")
	m.setFail("m1", down)
	m.setTasks("v1", mkTask("t1", 1, swarm.TaskStateRunning))
	run(t, s, m)
	eventually(t, "the managers to see t1 running", func() bool { return m.seenState("t1") == swarm.TaskStateRunning })
	for _, snd := range m.sendLog() {
		if snd.err == nil && snd.addr != "m2" {
			t.Errorf("report taken by %q", snd.addr)
		}
	}
	m.mu.Lock()
	polls := slices.Clone(m.polls)
	m.mu.Unlock()
	if !slices.Contains(polls, "m2") {
		t.Errorf("assignments never polled from m2: %v", polls)
	}
}

// sentSince collects, per task, the last state of successful sends after
// index i of the send log.
func (m *fakeManagers) sentSince(i int) map[string]swarm.TaskState {
	got := map[string]swarm.TaskState{}
	for _, snd := range m.sendLog()[i:] {
		if snd.err == nil {
			for _, u := range snd.updates {
				got[u.TaskID] = u.Status.State
			}
		}
	}
	return got
}

func setupLeaderSession(t *testing.T) (*fakeManagers, *Session, *string) {
	t.Helper()
	m := newFakeManagers()
	h := newExec(t, fake.New(), "")
	s := newSession(m, "m1", "m2")
	s.Executor = h.e
	leader := "L1"
	m.setAnswer(func(string) nodeapi.HeartbeatResponse {
		return nodeapi.HeartbeatResponse{Period: 10 * time.Millisecond, Leader: leader}
	})
	m.setTasks("v1", mkTask("t1", 1, swarm.TaskStateRunning), mkTask("t2", 2, swarm.TaskStateRunning))
	run(t, s, m)
	eventually(t, "the managers to see both tasks running", func() bool {
		return m.seenState("t1") == swarm.TaskStateRunning && m.seenState("t2") == swarm.TaskStateRunning
	})
	return m, s, &leader
}

func TestSessionResendsOnLeaderChange(t *testing.T) {
	m, _, leader := setupLeaderSession(t)

	// The same leader beat after beat: nothing is sent again.
	sends := len(m.sendLog())
	beats := len(m.beatLog())
	eventually(t, "20 more beats", func() bool { return len(m.beatLog()) >= beats+20 })
	if n := len(m.sendLog()); n != sends {
		t.Errorf("%d sends with an unchanged leader: %+v", n-sends, m.sendLog()[sends:])
	}

	// A new leader: it may have missed reports the old one took.
	m.mu.Lock()
	*leader = "L2"
	m.mu.Unlock()
	eventually(t, "every status sent again", func() bool {
		got := m.sentSince(sends)
		return got["t1"] == swarm.TaskStateRunning && got["t2"] == swarm.TaskStateRunning
	})

	// An answer without a leader (an older manager) is not a change.
	sends = len(m.sendLog())
	m.mu.Lock()
	*leader = ""
	m.mu.Unlock()
	beats = len(m.beatLog())
	eventually(t, "5 more beats", func() bool { return len(m.beatLog()) >= beats+5 })
	m.mu.Lock()
	*leader = "L2"
	m.mu.Unlock()
	beats = len(m.beatLog())
	eventually(t, "20 more beats", func() bool { return len(m.beatLog()) >= beats+20 })
	if n := len(m.sendLog()); n != sends {
		t.Errorf("%d sends after the same leader came back from an answer without one", n-sends)
	}
}

// A leader that restarts keeps its node ID but not its Raft term, and the
// manager names the leader by both (manager/session.go): reports the old
// leader queued in memory and never wrote are sent again.
func TestSessionResendsAfterOutage(t *testing.T) {
	m, _, leader := setupLeaderSession(t)
	m.mu.Lock()
	*leader = "L1/1"
	m.mu.Unlock()
	beats := len(m.beatLog())
	eventually(t, "beats naming the leader's term", func() bool { return len(m.beatLog()) >= beats+3 })
	sends := len(m.sendLog())
	m.setFail("m1", errdefs.Unavailable("restarting"))
	m.setFail("m2", errdefs.Unavailable("restarting"))
	beats = len(m.beatLog())
	eventually(t, "beats to fail on both managers", func() bool { return len(m.beatLog()) >= beats+4 })
	// The same node comes back as leader in a later term.
	m.mu.Lock()
	*leader = "L1/2"
	m.mu.Unlock()
	m.setFail("m1", nil)
	m.setFail("m2", nil)
	eventually(t, "every status sent again after the outage", func() bool {
		got := m.sentSince(sends)
		return got["t1"] == swarm.TaskStateRunning && got["t2"] == swarm.TaskStateRunning
	})
}

func TestSessionRefreshAfterEveryManagerFailed(t *testing.T) {
	m := newFakeManagers()
	s := newSession(m, "m1", "m2")
	var mu sync.Mutex
	refreshes := 0
	s.Hooks.Refresh = func() []string {
		mu.Lock()
		defer mu.Unlock()
		refreshes++
		return []string{"m2", "m3"}
	}
	m.setFail("m1", errdefs.Unavailable("down"))
	run(t, s, m)
	// m1 fails, m2 answers: no refresh while a manager works.
	eventually(t, "beats to m2", func() bool { return m.beatsTo("m2") >= 5 })
	mu.Lock()
	if refreshes != 0 {
		t.Errorf("%d refreshes while m2 answers", refreshes)
	}
	mu.Unlock()
	// Every known manager fails: the hook's list is used.
	m.setFail("m2", errdefs.Unavailable("down"))
	eventually(t, "beats to m3 from the refreshed list", func() bool { return m.beatsTo("m3") >= 2 })
	if _, mgr, err := s.Status(); mgr != "m3" || err != nil {
		t.Errorf("Status() = %q %v", mgr, err)
	}
	mu.Lock()
	if refreshes == 0 {
		t.Error("no refresh")
	}
	mu.Unlock()
}

// A refresh that finds no manager (nothing saved yet, a manager whose Raft
// view is momentarily empty) must not leave the session with nothing to try:
// with no target there are no failures, so Refresh is never called again.
func TestSessionEmptyRefreshKeepsManagers(t *testing.T) {
	m := newFakeManagers()
	s := newSession(m, "m1")
	s.Hooks.Refresh = func() []string { return nil }
	m.setFail("m1", errdefs.Unavailable("restarting"))
	run(t, s, m)
	eventually(t, "a failed beat", func() bool { return m.beatsTo("m1") >= 1 })
	m.setFail("m1", nil)
	eventually(t, "the session to reconnect to m1", func() bool {
		last, mgr, err := s.Status()
		return mgr == "m1" && err == nil && !last.IsZero()
	})
}

// After the first failure a node retries at once (its manager died); after
// more in a row it waits longer each time, never past the limit, so that
// thousands of nodes failing together back off.
func TestRetryAfterBacksOff(t *testing.T) {
	first, limit := 50*time.Millisecond, 5*time.Second
	for range 100 {
		if d := retryAfter(1, first, limit); d < first/2 || d > first {
			t.Fatalf("after one failure: %v, want within [%v, %v]", d, first/2, first)
		}
		if d := retryAfter(4, first, limit); d < 4*first || d > 8*first {
			t.Fatalf("after four failures: %v, want within [%v, %v]", d, 4*first, 8*first)
		}
		if d := retryAfter(40, first, limit); d < limit/2 || d > limit {
			t.Fatalf("after forty failures: %v, want within [%v, %v]", d, limit/2, limit)
		}
	}
}
