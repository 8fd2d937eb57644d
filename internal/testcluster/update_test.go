package testcluster_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/testcluster"
)

const monitor = 200 * time.Millisecond

// updatable is a replicated service with a fast rolling update: one task
// at a time, each watched for 200ms, and a short restart delay (a failed
// task is restarted as docker does, after the delay).
func updatable(name string, n uint64, action swarm.FailureAction, order swarm.UpdateOrder, env ...string) swarm.ServiceSpec {
	s := replicated(name, n, env...)
	s.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, Monitor: monitor, FailureAction: action, Order: order}
	s.RollbackConfig = &swarm.UpdateConfig{Parallelism: 1, Monitor: monitor, FailureAction: swarm.UpdateFailureActionPause, Order: order}
	s.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(100 * time.Millisecond)}
	return s
}

// updateState waits for the service's UpdateStatus to reach state.
func waitUpdateState(t *testing.T, c *testcluster.Cluster, via *testcluster.Node, id string, want swarm.UpdateState, timeout time.Duration) swarm.Service {
	t.Helper()
	var s swarm.Service
	c.Eventually(timeout, func() error {
		s = inspectService(t, via, id)
		if s.UpdateStatus == nil || s.UpdateStatus.State != want {
			return fmt.Errorf("update status %+v, want %s", s.UpdateStatus, want)
		}
		return nil
	})
	return s
}

// slotHistory is, per slot, the tasks of the slot oldest first.
func slotHistory(tasks []swarm.Task) map[int][]swarm.Task {
	out := map[int][]swarm.Task{}
	for _, tk := range tasks {
		out[tk.Slot] = append(out[tk.Slot], tk)
	}
	for _, h := range out {
		sort.Slice(h, func(i, j int) bool { return h[i].CreatedAt.Before(h[j].CreatedAt) })
	}
	return out
}

func testRollingUpdate(t *testing.T, c *testcluster.Cluster, leader *testcluster.Node) {
	t.Run("StopFirst", func(t *testing.T) {
		const n = 3
		id := createService(t, c, leader, updatable("upd", n, swarm.UpdateFailureActionPause, swarm.UpdateOrderStopFirst, "V=1"))
		before := waitConverged(t, c, leader, id, n, 10*time.Second)

		mustUpdateService(t, leader, id, setEnv("V=2"))
		start := time.Now()
		// Sample what the user sees while the update runs.
		minRunning := n
		c.Eventually(15*time.Second, func() error {
			tasks, err := serviceTasks(reqCtx(t), leader, id)
			if err != nil {
				return err
			}
			minRunning = min(minRunning, len(filterTasks(tasks, isRunning)))
			s := inspectService(t, leader, id)
			if s.UpdateStatus == nil || s.UpdateStatus.State != swarm.UpdateStateCompleted {
				return fmt.Errorf("update status %+v", s.UpdateStatus)
			}
			return nil
		})
		t.Logf("rolling update of %d tasks completed in %s; at least %d ran throughout", n, time.Since(start).Round(time.Millisecond), minRunning)
		if minRunning < n-1 {
			t.Errorf("%d tasks running at one point of the update, want at least %d", minRunning, n-1)
		}
		after := waitConverged(t, c, leader, id, n, 5*time.Second)
		for _, dt := range driverTasks(c, id) {
			if dt.Running && !hasEnv(dt.Env, "V=2") {
				t.Errorf("task %s on %s runs with env %v after the update", dt.ID, dt.Node.Name, dt.Env)
			}
		}
		for _, tk := range before {
			if slices.Contains(taskIDs(after), tk.ID) {
				t.Errorf("task %s of slot %d was not replaced", tk.ID, tk.Slot)
			}
		}
		// Exactly: per slot, the gap between the old task's end and the new
		// one's start; with parallelism 1 no two gaps overlap, and each
		// slot starts after the previous new task ran for the monitor window.
		type gap struct {
			slot     int
			from, to time.Time
		}
		var gaps []gap
		for slot, h := range slotHistory(mustTasks(t, leader, id)) {
			if len(h) != 2 {
				t.Errorf("slot %d has %d tasks, want the old and the new: %s", slot, len(h), describeTasks(c, h))
				continue
			}
			old, cur := h[0], h[1]
			if old.Status.State != swarm.TaskStateShutdown || !isRunning(cur) {
				t.Errorf("slot %d: old task %s, new %s/%s", slot, old.Status.State, cur.Status.State, cur.DesiredState)
				continue
			}
			gaps = append(gaps, gap{slot: slot, from: old.Status.Timestamp, to: cur.Status.Timestamp})
		}
		sort.Slice(gaps, func(i, j int) bool { return gaps[i].from.Before(gaps[j].from) })
		for i := 1; i < len(gaps); i++ {
			prev, g := gaps[i-1], gaps[i]
			if g.from.Before(prev.to.Add(monitor)) {
				t.Errorf("slot %d stopped at %s, before slot %d's new task ran for the monitor window (running at %s)",
					g.slot, g.from.Format("15:04:05.000"), prev.slot, prev.to.Format("15:04:05.000"))
			}
		}

		// docker service rollback: the previous spec, through the same
		// rolling machinery.
		s := inspectService(t, leader, id)
		if _, err := leader.Client.ServiceUpdate(reqCtx(t), id, client.ServiceUpdateOptions{Version: s.Version, Spec: s.Spec, Rollback: "previous"}); err != nil {
			t.Fatalf("service rollback: %v", err)
		}
		s = waitUpdateState(t, c, leader, id, swarm.UpdateStateRollbackCompleted, 15*time.Second)
		if env := s.Spec.TaskTemplate.ContainerSpec.Env; !slices.Equal(env, []string{"V=1"}) {
			t.Errorf("spec after the rollback has env %v, want [V=1]", env)
		}
		waitConverged(t, c, leader, id, n, 5*time.Second)
		for _, dt := range driverTasks(c, id) {
			if dt.Running && !hasEnv(dt.Env, "V=1") {
				t.Errorf("task %s on %s runs with env %v after the rollback", dt.ID, dt.Node.Name, dt.Env)
			}
		}
	})

	t.Run("FailureRollback", func(t *testing.T) {
		const n = 3
		id := createService(t, c, leader, updatable("upd-rollback", n, swarm.UpdateFailureActionRollback, swarm.UpdateOrderStopFirst, "V=1"))
		before := waitConverged(t, c, leader, id, n, 10*time.Second)
		mustUpdateService(t, leader, id, setEnv("V=2", "FAKE_EXIT_AFTER=50ms", "FAKE_EXIT_CODE=1"))
		start := time.Now()
		s := waitUpdateState(t, c, leader, id, swarm.UpdateStateRollbackCompleted, 15*time.Second)
		t.Logf("failed update rolled back in %s: %s", time.Since(start).Round(time.Millisecond), s.UpdateStatus.Message)
		if env := s.Spec.TaskTemplate.ContainerSpec.Env; !slices.Equal(env, []string{"V=1"}) {
			t.Errorf("spec after rollback has env %v, want [V=1]", env)
		}
		after := waitConverged(t, c, leader, id, n, 5*time.Second)
		for _, dt := range driverTasks(c, id) {
			if dt.Running && (!hasEnv(dt.Env, "V=1") || hasEnv(dt.Env, "FAKE_EXIT_CODE=1")) {
				t.Errorf("task %s on %s runs with env %v after the rollback", dt.ID, dt.Node.Name, dt.Env)
			}
		}
		// Only the first slot was updated before the failure; docker leaves
		// the others' tasks alone on rollback: they already run the spec
		// rolled back to.
		kept := 0
		for _, tk := range before {
			if slices.Contains(taskIDs(after), tk.ID) {
				kept++
			}
		}
		if kept != n-1 {
			t.Errorf("rollback replaced %d of the %d tasks the failed update never touched; docker leaves them running", n-1-kept, n-1)
		}
	})

	// A scale during an update that then fails and rolls back: whatever
	// spec the service ends with, the tasks the API calls up to date run
	// it (docker's CLI follows those to show convergence).
	t.Run("ScaleDuringFailingUpdate", func(t *testing.T) {
		id := createService(t, c, leader, updatable("upd-scale", 2, swarm.UpdateFailureActionRollback, swarm.UpdateOrderStopFirst, "V=1"))
		waitConverged(t, c, leader, id, 2, 10*time.Second)
		mustUpdateService(t, leader, id, setEnv("V=2", "FAKE_EXIT_AFTER=100ms", "FAKE_EXIT_CODE=1"))
		mustUpdateService(t, leader, id, func(s *swarm.ServiceSpec) { s.Mode.Replicated.Replicas = ptr(uint64(3)) })
		var s swarm.Service
		c.Eventually(15*time.Second, func() error {
			s = inspectService(t, leader, id)
			if s.UpdateStatus == nil {
				return fmt.Errorf("no update status")
			}
			switch s.UpdateStatus.State {
			case swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused, swarm.UpdateStatePaused, swarm.UpdateStateCompleted:
				return nil
			}
			return fmt.Errorf("update status %+v", s.UpdateStatus)
		})
		t.Logf("update ended %s: %s; spec env %v", s.UpdateStatus.State, s.UpdateStatus.Message, s.Spec.TaskTemplate.ContainerSpec.Env)
		res, err := leader.Client.TaskList(reqCtx(t), client.TaskListOptions{Filters: make(client.Filters).Add("service", id).Add("_up-to-date", "true")})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range res.Items {
			if tk.DesiredState != swarm.TaskStateRunning {
				continue
			}
			if env := tk.Spec.ContainerSpec.Env; !slices.Equal(env, s.Spec.TaskTemplate.ContainerSpec.Env) {
				knownBug(t, "task %s (slot %d, %s) is listed up to date but runs env %v; the service's spec has %v "+
					"(UpdateService's same-template branch replaces PreviousSpec without PreviousSpecVersion, so the "+
					"rollback labels the scaled spec with the pre-update version)",
					tk.ID, tk.Slot, tk.Status.State, env, s.Spec.TaskTemplate.ContainerSpec.Env)
			}
		}
	})

	t.Run("FailurePause", func(t *testing.T) {
		const n = 2
		id := createService(t, c, leader, updatable("upd-pause", n, swarm.UpdateFailureActionPause, swarm.UpdateOrderStopFirst, "V=1"))
		before := waitConverged(t, c, leader, id, n, 10*time.Second)
		mustUpdateService(t, leader, id, setEnv("V=2", "FAKE_EXIT_AFTER=50ms", "FAKE_EXIT_CODE=1"))
		s := waitUpdateState(t, c, leader, id, swarm.UpdateStatePaused, 15*time.Second)
		t.Logf("update paused: %s", s.UpdateStatus.Message)
		// One slot was tried; the other still runs its old task.
		running := filterTasks(mustTasks(t, leader, id), isRunning)
		untouched := 0
		for _, tk := range before {
			if slices.Contains(taskIDs(running), tk.ID) {
				untouched++
			}
		}
		if untouched != n-1 {
			t.Errorf("%d old tasks still run after the paused update, want %d: %s", untouched, n-1, describeTasks(c, mustTasks(t, leader, id)))
		}
		// And it stays paused while the failed slot restarts.
		consistently(t, 500*time.Millisecond, func() error {
			s := inspectService(t, leader, id)
			if s.UpdateStatus == nil || s.UpdateStatus.State != swarm.UpdateStatePaused {
				return fmt.Errorf("update status %+v, want paused", s.UpdateStatus)
			}
			return nil
		})
	})

	t.Run("StartFirst", func(t *testing.T) {
		const n = 2
		id := createService(t, c, leader, updatable("upd-start-first", n, swarm.UpdateFailureActionPause, swarm.UpdateOrderStartFirst, "V=1"))
		waitConverged(t, c, leader, id, n, 10*time.Second)
		mustUpdateService(t, leader, id, setEnv("V=2"))
		maxRunning := 0
		c.Eventually(15*time.Second, func() error {
			maxRunning = max(maxRunning, len(driverRunning(c, id)))
			s := inspectService(t, leader, id)
			if s.UpdateStatus == nil || s.UpdateStatus.State != swarm.UpdateStateCompleted {
				return fmt.Errorf("update status %+v", s.UpdateStatus)
			}
			return nil
		})
		waitConverged(t, c, leader, id, n, 5*time.Second)
		t.Logf("start-first update: up to %d tasks ran at once", maxRunning)
		for slot, h := range slotHistory(mustTasks(t, leader, id)) {
			if len(h) != 2 {
				t.Errorf("slot %d has %d tasks, want the old and the new: %s", slot, len(h), describeTasks(c, h))
				continue
			}
			old, cur := h[0], h[1]
			if old.Status.State != swarm.TaskStateShutdown || !isRunning(cur) {
				t.Errorf("slot %d: old task %s, new %s/%s", slot, old.Status.State, cur.Status.State, cur.DesiredState)
				continue
			}
			// The new task was running before the old one stopped.
			if !cur.Status.Timestamp.Before(old.Status.Timestamp) {
				t.Errorf("slot %d: new task running at %s, old one stopped at %s; start-first wants the new one first",
					slot, cur.Status.Timestamp.Format("15:04:05.000"), old.Status.Timestamp.Format("15:04:05.000"))
			}
		}
	})
}
