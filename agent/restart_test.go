package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

func byTask(us []nodeapi.TaskStatusUpdate) map[string]swarm.TaskStatus {
	m := map[string]swarm.TaskStatus{}
	for _, u := range us {
		m[u.TaskID] = u.Status
	}
	return m
}

func TestExecutorRestartReattaches(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state", "tasks.json")
	drv := fake.New()
	a := newExec(t, drv, db)
	tasks := []swarm.Task{
		mkTask("keeps", 1, swarm.TaskStateRunning),
		mkTask("done", 2, swarm.TaskStateRunning),
		mkTask("crashed", 3, swarm.TaskStateRunning),
		mkTask("vanished", 4, swarm.TaskStateRunning),
		mkTask("finished", 5, swarm.TaskStateRunning, "FAKE_EXIT_CODE=0"),
	}
	a.e.Sync(assigned(tasks...))
	for _, tk := range tasks[:4] {
		a.waitState(tk.ID, swarm.TaskStateRunning)
	}
	a.waitState("finished", swarm.TaskStateComplete)
	a.stop()

	var onDisk map[string]json.RawMessage
	if b, err := os.ReadFile(db); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &onDisk); err != nil || len(onDisk) != 5 {
		t.Fatalf("local record: %d tasks, %v", len(onDisk), err)
	}

	// While the agent is down, tasks go on living and dying.
	if err := drv.Exit("done", 0); err != nil {
		t.Fatal(err)
	}
	if err := drv.Exit("crashed", 7); err != nil {
		t.Fatal(err)
	}
	drv.Vanish("vanished")
	startsBefore := startCount(drv)

	b := newExec(t, drv, db)
	got := byTask(b.drain())
	if st := got["done"]; st.State != swarm.TaskStateComplete || st.ContainerStatus == nil || st.ContainerStatus.ExitCode != 0 {
		t.Errorf("task that exited 0 meanwhile: %+v", st)
	}
	if st := got["crashed"]; st.State != swarm.TaskStateFailed || st.ContainerStatus == nil || st.ContainerStatus.ExitCode != 7 || !strings.Contains(st.Err, "7") {
		t.Errorf("task that exited 7 meanwhile: %+v", st)
	}
	if st := got["vanished"]; st.State != swarm.TaskStateFailed || !strings.Contains(st.Err, "lost") {
		t.Errorf("task gone meanwhile: %+v", st)
	}
	if st, ok := got["keeps"]; ok {
		t.Errorf("a task still running is reported again at start: %+v", st)
	}
	if st, ok := got["finished"]; ok {
		t.Errorf("a task that had ended before the restart is reported again at start: %+v", st)
	}
	if !b.logs.has(slog.LevelInfo, "re-attached") {
		t.Error("no log of the re-attachment")
	}

	// The managers' set, as they saw it before the restart.
	view := []swarm.Task{
		withObserved(tasks[0], swarm.TaskStateRunning),
		withObserved(tasks[1], swarm.TaskStateRunning),
		withObserved(tasks[2], swarm.TaskStateRunning),
		withObserved(tasks[3], swarm.TaskStateRunning),
		withObserved(tasks[4], swarm.TaskStateComplete),
	}
	b.e.Sync(assigned(view...))
	if n := startCount(drv); n != startsBefore {
		t.Fatalf("the restarted executor started %d tasks again", n-startsBefore)
	}
	if running, _, _ := drv.Stats(); running != 1 {
		t.Errorf("%d tasks running, want the re-attached one", running)
	}
	if _, hd, ok := b.e.Handle("keeps"); !ok || hd.ID != "keeps" {
		t.Errorf("no handle for the re-attached task")
	}
	// The managers still see the ended tasks running: their final reports
	// are pending (queued again), nothing else.
	again := byTask(b.drain())
	for _, id := range []string{"done", "crashed", "vanished"} {
		if !terminal(again[id].State) {
			t.Errorf("task %s: report pending after Sync %+v, want its final state", id, again[id])
		}
	}
	if _, ok := again["keeps"]; ok {
		t.Errorf("report for the running task after Sync: %+v", again["keeps"])
	}

	// The re-attached task is watched: its exit is reported.
	if err := drv.Exit("keeps", 0); err != nil {
		t.Fatal(err)
	}
	b.waitState("keeps", swarm.TaskStateComplete)
}

func TestExecutorRestartThenShutdown(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tasks.json")
	drv := fake.New()
	a := newExec(t, drv, db)
	tk := mkTask("t1", 1, swarm.TaskStateRunning)
	a.e.Sync(assigned(tk))
	a.waitState("t1", swarm.TaskStateRunning)
	a.stop()

	b := newExec(t, drv, db)
	b.e.Sync(assigned(withObserved(withDesired(tk, swarm.TaskStateShutdown), swarm.TaskStateRunning)))
	st := b.waitState("t1", swarm.TaskStateShutdown)
	if st.ContainerStatus == nil || st.ContainerStatus.ExitCode != 143 {
		t.Errorf("container status %+v", st.ContainerStatus)
	}
	if n := startCount(drv); n != 1 {
		t.Errorf("%d starts", n)
	}
}

// A task the previous agent had started with a driver this one lacks.
func TestExecutorRestartWithoutDriver(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tasks.json")
	drv := fake.New()
	a := newExec(t, drv, db)
	a.e.Sync(assigned(mkTask("t1", 1, swarm.TaskStateRunning)))
	a.waitState("t1", swarm.TaskStateRunning)
	a.stop()

	// The restarted agent has no such driver any more.
	ctx, cancel := context.WithCancel(context.Background())
	c := &Executor{NodeID: "node-1", Hostname: "host-a", Drivers: map[string]driver.Driver{}, DBPath: db, Log: slog.New(&logCapture{})}
	t.Cleanup(func() { cancel(); c.Wait() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h := &execHarness{t: t, e: c, drv: drv, hist: map[string][]swarm.TaskStatus{}}
	got := byTask(h.drain())
	if st := got["t1"]; st.State != swarm.TaskStateFailed || !strings.Contains(st.Err, "driver") {
		t.Errorf("task of a missing driver after restart: %+v", st)
	}
}

func TestExecutorDamagedRecord(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		bug           string
	}{
		{name: "garbage", content: "{not json"},
		{name: "truncated", content: `{"t1":{"Task":{"ID":"t1"`},
		{name: "empty", content: ""},
		{name: "wrong shape", content: `["t1"]`},
		{name: "null", content: "null", bug: "a record of `null` decodes to a nil map: the first Sync panics (assignment to entry in nil map); Start should reset e.tasks when it is nil after Unmarshal"},
		{name: "null entry", content: `{"t1":null}`, bug: "a record entry of `null` is a nil *record: Start dereferences it (r.Handle) and panics; skip nil entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = tc.bug // fixed: kept as the reason the case exists
			db := filepath.Join(t.TempDir(), "tasks.json")
			if err := os.WriteFile(db, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			drv := fake.New()
			h := func() (h *execHarness) {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("Start panicked on a damaged record: %v", p)
					}
				}()
				h, err := startExec(t, drv, db)
				if err != nil {
					t.Fatalf("Start refused a damaged record: %v", err)
				}
				return h
			}()
			if tc.content != "null" && tc.content != `{"t1":null}` && !h.logs.has(slog.LevelWarn, "damaged") {
				t.Errorf("no warning about the damaged record; logged %v", h.logs.all())
			}
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("Sync panicked after a damaged record: %v", p)
					}
				}()
				h.e.Sync(assigned(mkTask("t2", 1, swarm.TaskStateRunning)))
			}()
			h.waitState("t2", swarm.TaskStateRunning)
			var onDisk map[string]json.RawMessage
			b, err := os.ReadFile(db)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &onDisk); err != nil || onDisk["t2"] == nil {
				t.Errorf("record after the repair: %s (%v)", b, err)
			}
		})
	}
}

// An agent that died between saving a task as accepted and saving the
// handle its driver returned (or before the driver created anything) must
// not leave the task stuck in a non-final state forever.
func TestExecutorRestartAfterCrashDuringStart(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tasks.json")
	drv := fake.New()
	g := newGate("t1")
	drv.OnStart = g.onStart
	a := newExec(t, drv, db)
	t.Cleanup(g.releaseAll)
	tk := mkTask("t1", 1, swarm.TaskStateRunning)
	a.e.Sync(assigned(tk))
	g.waitEntered(t, "t1")
	// The "crash": what is on disk now is all the next agent gets; the
	// driver never created the task.
	snap, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(dir, "crashed.json")
	if err := os.WriteFile(crashed, snap, 0o600); err != nil {
		t.Fatal(err)
	}

	b := newExec(t, fake.New(), crashed)
	b.e.Sync(assigned(withObserved(tk, swarm.TaskStateAccepted)))
	eventually(t, "the task to run again or to be reported final", func() bool {
		b.drain()
		st := b.last("t1").State
		return st == swarm.TaskStateRunning || terminal(st)
	})
}

func readRecord(t *testing.T, db string) map[string]json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("local record %s: %v", b, err)
	}
	return m
}

func TestExecutorRecordFollowsSet(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tasks.json")
	drv := fake.New()
	h := newExec(t, drv, db)
	t1, t2 := mkTask("t1", 1, swarm.TaskStateRunning), mkTask("t2", 2, swarm.TaskStateRunning)
	h.e.Sync(assigned(t1, t2))
	h.waitState("t1", swarm.TaskStateRunning)
	h.waitState("t2", swarm.TaskStateRunning)
	if m := readRecord(t, db); len(m) != 2 {
		t.Fatalf("record holds %d tasks", len(m))
	}
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("record mode %v", fi.Mode().Perm())
	}
	h.e.Sync(assigned(withObserved(t1, swarm.TaskStateRunning)))
	if m := readRecord(t, db); len(m) != 1 || m["t1"] == nil {
		t.Errorf("record after t2 was dropped: %v", m)
	}
	// Saves run under the executor's lock (a dropped task's watcher may
	// still save): look at the directory under it too.
	h.e.mu.Lock()
	_, err = os.Stat(db + ".tmp")
	h.e.mu.Unlock()
	if err == nil {
		t.Error("temporary file left behind")
	}
}

// A task the node runs but holds no record of (the record was lost) must
// not be left behind: the drivers are Listers precisely so the agent can
// find such tasks and re-attach or remove them.
func TestExecutorLostRecordLeavesNoOrphan(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tasks.json")
	drv := fake.New()
	a := newExec(t, drv, db)
	tk := mkTask("t1", 1, swarm.TaskStateRunning)
	a.e.Sync(assigned(tk))
	a.waitState("t1", swarm.TaskStateRunning)
	a.stop()
	if err := os.WriteFile(db, []byte("{damaged"), 0o600); err != nil {
		t.Fatal(err)
	}

	b := newExec(t, drv, db)
	b.e.Sync(assigned(withObserved(tk, swarm.TaskStateRunning)))
	eventually(t, "t1 to be re-attached or reported final", func() bool {
		b.drain()
		_, _, attached := b.e.Handle("t1")
		return attached || terminal(b.last("t1").State)
	})
	if st := b.last("t1"); terminal(st.State) {
		if running, _, _ := drv.Stats(); running != 0 {
			t.Errorf("t1 reported %q (%s) while it still runs in the driver", st.State, st.Err)
		}
	}
	// The managers drop the task: nothing of it may remain.
	b.e.Sync(nil)
	eventually(t, "the driver to hold nothing", func() bool {
		_, existing, _ := drv.Stats()
		return existing == 0
	})
}

// An agent stopping (not crashing) while a driver starts a task: the task
// did not fail, the agent went away. The next agent should finish the job.
func TestExecutorStopDuringStartDoesNotFailTask(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tasks.json")
	drv := fake.New()
	a := newExec(t, drv, db)
	tk := mkTask("t1", 1, swarm.TaskStateRunning, "FAKE_START_DELAY=5s")
	a.e.Sync(assigned(tk))
	a.waitState("t1", swarm.TaskStateStarting)
	a.stop()

	b := newExec(t, drv, db)
	b.e.Sync(assigned(withObserved(tk, swarm.TaskStateStarting)))
	eventually(t, "t1 to run or end", func() bool {
		b.drain()
		st := b.last("t1").State
		return st == swarm.TaskStateRunning || terminal(st)
	})
	if st := b.last("t1"); st.State != swarm.TaskStateRunning {
		t.Fatalf("after the agent's restart the task is %q (%s), want it started", st.State, st.Err)
	}
}
