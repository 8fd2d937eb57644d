package testcluster_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/testcluster"
)

// heartbeat is the failure cluster's heartbeat period: a node is Down
// after 3 missed periods.
const heartbeat = 250 * time.Millisecond

// starts returns each node's count of fake task starts.
func starts(c *testcluster.Cluster) map[string]int {
	out := map[string]int{}
	for _, n := range c.Nodes {
		_, _, s := n.Fake.Stats()
		out[n.Name] = s
	}
	return out
}

// TestServiceFailures keeps a replicated service running through an agent
// restart, a manager failover and a worker's death, on 3 managers (drained,
// so the 3 workers run every task) with a 250ms heartbeat.
func TestServiceFailures(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 3, Workers: 3, HeartbeatPeriod: heartbeat})
	leader := c.Leader()
	for _, m := range c.Nodes[:3] {
		setAvailability(t, leader, m, swarm.NodeAvailabilityDrain)
	}
	w0, w1, w2 := c.Nodes[3], c.Nodes[4], c.Nodes[5]
	// Created through a follower: the write is forwarded to the leader.
	id := createService(t, c, c.Followers()[0], replicated("keepalive", 6))
	tasks := waitConverged(t, c, leader, id, 6, 10*time.Second)
	if got := perNode(c, tasks); !maps.Equal(got, map[string]int{"w0": 2, "w1": 2, "w2": 2}) {
		t.Fatalf("6 replicas on 3 workers: %v, want 2 each", got)
	}

	// unchanged checks that the service runs exactly the tasks it ran
	// before, on the same nodes, and no node started a task since.
	unchanged := func(via *testcluster.Node, want map[string]string, wantStarts map[string]int) error {
		tasks, err := converged(reqCtx(t), c, via, id, len(want))
		if err != nil {
			return err
		}
		if got := placement(tasks); !maps.Equal(got, want) {
			return fmt.Errorf("running tasks changed: %s", describeTasks(c, tasks))
		}
		if got := starts(c); !maps.Equal(got, wantStarts) {
			return fmt.Errorf("fake driver starts went from %v to %v", wantStarts, got)
		}
		return nil
	}

	c.Run("AgentRestart", func(t *testing.T) {
		leader := c.Leader()
		// Two more tasks on w0 that end while its agent is down: one
		// exits, the other vanishes (its container removed behind the
		// agent's back). They must be reported and replaced, not lost.
		vspec := replicated("victims", 2)
		vspec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.hostname==w0"}}
		vspec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(100 * time.Millisecond)}
		victims := createService(t, c, leader, vspec)
		vtasks := waitConverged(t, c, leader, victims, 2, 10*time.Second)
		tasks := waitConverged(t, c, leader, id, 6, 5*time.Second)
		want, wantStarts := placement(tasks), starts(c)

		w0.Stop()
		if err := w0.Fake.Exit(vtasks[0].ID, 3); err != nil {
			t.Fatal(err)
		}
		w0.Fake.Vanish(vtasks[1].ID)
		w0.Restart()
		start := time.Now()
		c.WaitReady(w0.ID)
		replaced := waitConvergedWhere(t, c, leader, victims, 2, 10*time.Second, func(ts []swarm.Task) error {
			for _, tk := range ts {
				if tk.ID == vtasks[0].ID || tk.ID == vtasks[1].ID {
					return fmt.Errorf("task %s that ended while the agent was down still counts as running", tk.ID)
				}
			}
			return nil
		})
		t.Logf("tasks that ended while the agent was down replaced %s after its restart", time.Since(start).Round(time.Millisecond))
		wantStarts["w0"] += len(replaced)
		for _, tk := range mustTasks(t, leader, victims) {
			switch tk.ID {
			case vtasks[0].ID:
				if tk.Status.State != swarm.TaskStateFailed || tk.Status.ContainerStatus == nil || tk.Status.ContainerStatus.ExitCode != 3 {
					t.Errorf("task that exited 3 while the agent was down: %s %+v", tk.Status.State, tk.Status.ContainerStatus)
				}
			case vtasks[1].ID:
				if tk.Status.State != swarm.TaskStateFailed || tk.Status.Err == "" {
					t.Errorf("task that vanished while the agent was down: %s %q", tk.Status.State, tk.Status.Err)
				}
			}
		}
		// Proof that the restarted agent talks to the managers again and
		// has synced its assignments: a new task reaches it and runs.
		probe := createService(t, c, leader, replicated("probe-restart", 3))
		probeTasks := waitConverged(t, c, leader, probe, 3, 10*time.Second)
		if got := perNode(c, probeTasks); got["w0"] != 1 {
			t.Fatalf("probe tasks: %v, want one on the restarted w0", got)
		}
		t.Logf("restarted agent runs new work %s after its restart", time.Since(start).Round(time.Millisecond))
		for _, n := range []*testcluster.Node{w0, w1, w2} {
			wantStarts[n.Name]++ // the probe's task
		}
		if err := unchanged(leader, want, wantStarts); err != nil {
			t.Fatalf("after the agent restart: %v", err)
		}
		// Nothing more happens (e.g. the node missing beats).
		consistently(t, 4*heartbeat, func() error { return unchanged(leader, want, wantStarts) })
	})

	// A task exits and its agent stops before it has told the managers
	// (reports gather for 20ms): the restarted agent must still report it.
	c.Run("AgentRestartRightAfterExit", func(t *testing.T) {
		leader := c.Leader()
		spec := replicated("exit-then-restart", 1)
		spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.hostname==w1"}}
		spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(100 * time.Millisecond)}
		sid := createService(t, c, leader, spec)
		first := waitConverged(t, c, leader, sid, 1, 10*time.Second)[0]
		if err := w1.Fake.Exit(first.ID, 1); err != nil {
			t.Fatal(err)
		}
		// Stop the daemon as soon as its agent has recorded the exit
		// locally, inside the 20ms in which reports gather.
		record := filepath.Join(w1.DataDir, "swarm", "tasks.json")
		if err := pollFast(2*time.Second, func() error { return recordedState(record, first.ID, swarm.TaskStateFailed) }); err != nil {
			t.Fatalf("the agent's local record: %v", err)
		}
		w1.Stop()
		w1.Restart()
		c.WaitReady(w1.ID)
		err := testcluster.Poll(5*time.Second, func() error {
			for _, tk := range mustTasks(t, leader, sid) {
				if tk.ID == first.ID && tk.Status.State != swarm.TaskStateFailed {
					return fmt.Errorf("task %s exited 1 before its agent restarted, and the managers still see it %s/%s",
						tk.ID, tk.Status.State, tk.DesiredState)
				}
			}
			_, err := converged(reqCtx(t), c, leader, sid, 1)
			return err
		})
		if err != nil {
			t.Fatalf("%v: the agent recorded the exit locally but had not reported it when it stopped", err)
		}
	})

	c.Run("ManagerFailover", func(t *testing.T) {
		old := c.Leader()
		tasks := waitConverged(t, c, old, id, 6, 5*time.Second)
		want, wantStarts := placement(tasks), starts(c)
		old.Stop()
		defer func() { // while the subtest still owns the cluster's helpers
			old.Restart()
			c.WaitReady(old.ID)
		}()
		start := time.Now()
		leader := c.Leader()
		t.Logf("new leader %s %s after the old one stopped", leader, time.Since(start).Round(time.Millisecond))
		// The new leader's orchestrator, scheduler and dispatcher work: a
		// new service runs on every worker.
		probe := createService(t, c, leader, replicated("probe-failover", 3))
		probeTasks := waitConverged(t, c, leader, probe, 3, 10*time.Second)
		if got := perNode(c, probeTasks); !maps.Equal(got, map[string]int{"w0": 1, "w1": 1, "w2": 1}) {
			t.Errorf("probe tasks after the failover: %v, want one per worker", got)
		}
		t.Logf("new leader runs new work %s after the old one stopped", time.Since(start).Round(time.Millisecond))
		for _, n := range []*testcluster.Node{w0, w1, w2} {
			wantStarts[n.Name]++
		}
		// moby/swarmkit#921: the healthy tasks are left alone, also once
		// the new leader's grace period for heartbeats has passed.
		if err := unchanged(leader, want, wantStarts); err != nil {
			t.Fatalf("after the failover: %v", err)
		}
		consistently(t, 5*heartbeat, func() error { return unchanged(leader, want, wantStarts) })
		c.WaitReady(w0.ID, w1.ID, w2.ID)
	})

	// A rolling update carries on under a new leader: no slot is updated
	// twice, none is skipped.
	c.Run("FailoverDuringUpdate", func(t *testing.T) {
		old := c.Leader()
		before := waitConverged(t, c, old, id, 6, 5*time.Second)
		startsBefore := 0
		for _, n := range starts(c) {
			startsBefore += n
		}
		mustUpdateService(t, c.Followers()[0], id, func(s *swarm.ServiceSpec) {
			s.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, Monitor: 300 * time.Millisecond}
			s.TaskTemplate.ContainerSpec.Env = []string{"V=2"}
		})
		// Stop the leader once the update is under way.
		c.Eventually(10*time.Second, func() error {
			updated := 0
			for _, dt := range driverTasks(c, id) {
				if dt.Running && hasEnv(dt.Env, "V=2") {
					updated++
				}
			}
			if updated < 1 {
				return fmt.Errorf("no task updated yet")
			}
			return nil
		})
		old.Stop()
		defer func() { // while the subtest still owns the cluster's helpers
			old.Restart()
			c.WaitReady(old.ID)
		}()
		start := time.Now()
		leader := c.Leader()
		waitUpdateState(t, c, leader, id, swarm.UpdateStateCompleted, 20*time.Second)
		t.Logf("update completed %s after the leader stopped", time.Since(start).Round(time.Millisecond))
		waitConverged(t, c, leader, id, 6, 5*time.Second)
		for slot, h := range slotHistory(mustTasks(t, leader, id)) {
			if len(h) != 2 {
				t.Errorf("slot %d has %d tasks after the update, want the old and the new one: %s", slot, len(h), describeTasks(c, h))
			}
		}
		for _, dt := range driverTasks(c, id) {
			if dt.Running && !hasEnv(dt.Env, "V=2") {
				t.Errorf("task %s on %s runs env %v after the update", dt.ID, dt.Node.Name, dt.Env)
			}
		}
		startsAfter := 0
		for _, n := range starts(c) {
			startsAfter += n
		}
		if startsAfter-startsBefore != len(before) {
			t.Errorf("the update started %d tasks, want %d", startsAfter-startsBefore, len(before))
		}
		if got := perNode(c, filterTasks(mustTasks(t, leader, id), isRunning)); !maps.Equal(got, map[string]int{"w0": 2, "w1": 2, "w2": 2}) {
			t.Errorf("after the update: %v, want 2 per worker", got)
		}
	})

	// Task status reports keep flowing while the leader stops: a report
	// the old leader accepted must not be lost, or the managers believe a
	// task runs that ended long ago (and never replace it).
	c.Run("FailoverDuringStatusReports", func(t *testing.T) {
		old := c.Leader()
		spec := replicated("flapping", 12, "FAKE_EXIT_AFTER=40ms")
		spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(time.Duration(0))}
		flap := createService(t, c, old, spec)
		c.Eventually(10*time.Second, func() error {
			tasks, err := serviceTasks(reqCtx(t), old, flap)
			if err != nil {
				return err
			}
			if done := filterTasks(tasks, func(tk swarm.Task) bool { return tk.Status.State == swarm.TaskStateComplete }); len(done) < 24 {
				return fmt.Errorf("%d tasks completed, waiting for 24", len(done))
			}
			return nil
		})
		old.Stop()
		defer func() { // while the subtest still owns the cluster's helpers
			old.Restart()
			c.WaitReady(old.ID)
		}()
		leader := c.Leader()
		c.Eventually(10*time.Second, func() error {
			return updateService(reqCtx(t), leader, flap, func(s *swarm.ServiceSpec) { s.Mode.Replicated.Replicas = ptr(uint64(0)) })
		})
		start := time.Now()
		err := testcluster.Poll(5*time.Second, func() error {
			tasks, err := serviceTasks(reqCtx(t), leader, flap)
			if err != nil {
				return err
			}
			var stuck []string
			for _, tk := range tasks {
				if !terminalState(tk.Status.State) {
					stuck = append(stuck, fmt.Sprintf("%s (slot %d on %s) %s/%s since %s", tk.ID, tk.Slot, nodeName(c, tk.NodeID),
						tk.Status.State, tk.DesiredState, tk.Status.Timestamp.Format("15:04:05.000")))
				}
			}
			if len(stuck) > 0 {
				return fmt.Errorf("%d tasks of the service scaled to 0 never reach a final state: %v", len(stuck), stuck)
			}
			if running := driverRunning(c, flap); len(running) > 0 {
				return fmt.Errorf("%d tasks still run on the drivers", len(running))
			}
			return nil
		})
		if err != nil {
			for _, dt := range driverTasks(c, flap) {
				if !dt.Running {
					continue
				}
				t.Logf("driver of %s: task %s slot %d still runs", dt.Node.Name, dt.ID, dt.Slot)
			}
			t.Fatalf("after the failover: %v; every driver has ended them: status reports the old leader took "+
				"but had not written were lost", err)
		}
		t.Logf("every task final %s after the scale to 0", time.Since(start).Round(time.Millisecond))
	})

	// The last change on a node is a task's exit, reported to the leader
	// just before it stops: once the report is lost, nothing else on the
	// node changes, so nothing makes the agent send it again.
	c.Run("FailoverRightAfterExit", func(t *testing.T) {
		old := c.Leader()
		spec := replicated("exit-before-failover", 3)
		spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
		sid := createService(t, c, old, spec)
		tasks := waitConverged(t, c, old, sid, 3, 10*time.Second)
		if got := perNode(c, tasks); !maps.Equal(got, map[string]int{"w0": 1, "w1": 1, "w2": 1}) {
			t.Fatalf("3 replicas on 3 workers: %v", got)
		}
		// Reports gather for 20ms on the agent, and again for 20ms in the
		// leader's dispatcher before they are written: exits 15-35ms before
		// the stop land in the leader's queue. One per worker, staggered.
		stopAt := time.Now().Add(60 * time.Millisecond)
		for i, tk := range tasks {
			n := c.Node(tk.NodeID)
			time.AfterFunc(time.Until(stopAt.Add(-time.Duration(15+10*i)*time.Millisecond)), func() { _ = n.Fake.Exit(tk.ID, 0) })
		}
		time.Sleep(time.Until(stopAt)) // choreography, not a wait for a condition
		old.Stop()
		defer func() { // while the subtest still owns the cluster's helpers
			old.Restart()
			c.WaitReady(old.ID)
		}()
		leader := c.Leader()
		err := testcluster.Poll(5*time.Second, func() error {
			for _, tk := range mustTasks(t, leader, sid) {
				if tk.Status.State != swarm.TaskStateComplete {
					return fmt.Errorf("task %s on %s exited 0 before the failover; the managers see it %s/%s", tk.ID, nodeName(c, tk.NodeID), tk.Status.State, tk.DesiredState)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%v: the report the old leader took was lost, and nothing else changed on the node to have it sent again", err)
		}
	})

	c.Run("NodeDeath", func(t *testing.T) {
		leader := c.Leader()
		tasks := waitConverged(t, c, leader, id, 6, 5*time.Second)
		var lost []string
		for _, tk := range tasks {
			if tk.NodeID == w2.ID {
				lost = append(lost, tk.ID)
			}
		}
		// A global service, removed while w2 is down: w2 drops its task
		// when it comes back.
		gid := createService(t, c, leader, global("everywhere"))
		waitConverged(t, c, leader, gid, 3, 10*time.Second)

		w2.Stop()
		start := time.Now()
		c.WaitDown(w2.ID)
		down := time.Since(start)
		// The dead node's tasks still run there (its fake driver lives on,
		// as containers would on a partitioned machine); the API no longer
		// counts them, and their slots run again elsewhere.
		moved := waitConverged(t, c, leader, id, 6, 10*time.Second)
		t.Logf("w2 marked Down after %s; its tasks running elsewhere after %s (heartbeat period %s)",
			down.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), heartbeat)
		if got := perNode(c, moved); got["w2"] != 0 || got["w0"] != 3 || got["w1"] != 3 {
			t.Errorf("after w2 died: %v, want 3 on w0 and w1", got)
		}
		for _, tk := range mustTasks(t, leader, id) {
			for _, l := range lost {
				if tk.ID == l && tk.DesiredState != swarm.TaskStateShutdown {
					t.Errorf("task %s of the dead node is desired %s, want shutdown", tk.ID, tk.DesiredState)
				}
			}
		}

		// docker service ls counts only tasks on nodes that are not down.
		if running, desired, err := serviceStatus(reqCtx(t), leader, gid); err != nil || running != 2 || desired != 2 {
			knownBug(t, "service ls for a global service while w2 is down: %d/%d, %v; docker shows 2/2 "+
				"(manager.Services computes readyNodes but never uses it)", running, desired, err)
		}
		if _, err := leader.Client.ServiceRemove(reqCtx(t), gid, client.ServiceRemoveOptions{}); err != nil {
			t.Fatalf("service rm: %v", err)
		}
		c.Eventually(10*time.Second, func() error {
			if tasks := mustTasks(t, leader, gid); len(tasks) > 0 {
				return fmt.Errorf("removed global service still has tasks: %s", describeTasks(c, tasks))
			}
			return nil
		})

		w2.Restart()
		start = time.Now()
		c.WaitReady(w2.ID)
		// Its stale tasks are stopped and reported shut down.
		c.Eventually(10*time.Second, func() error {
			for _, dt := range driverTasks(c, id) {
				if dt.Node == w2 && dt.Running {
					return fmt.Errorf("stale task %s (slot %d) still runs on w2", dt.ID, dt.Slot)
				}
			}
			for _, tk := range mustTasks(t, leader, id) {
				for _, l := range lost {
					if tk.ID == l && tk.Status.State != swarm.TaskStateShutdown {
						return fmt.Errorf("stale task %s is %s in the API, want shutdown", tk.ID, tk.Status.State)
					}
				}
			}
			return nil
		})
		t.Logf("stale tasks stopped %s after w2 came back", time.Since(start).Round(time.Millisecond))
		waitGone(t, c, leader, gid, 10*time.Second)
		// One running task per slot, counting every driver, and no
		// rebalancing onto the node that came back.
		oneEach := func() error {
			bySlot := map[int][]string{}
			for _, dt := range driverTasks(c, id) {
				if dt.Running {
					bySlot[dt.Slot] = append(bySlot[dt.Slot], dt.Node.Name)
				}
			}
			for slot := 1; slot <= 6; slot++ {
				if len(bySlot[slot]) != 1 {
					return fmt.Errorf("slot %d runs on %v", slot, bySlot[slot])
				}
			}
			_, err := converged(reqCtx(t), c, leader, id, 6)
			return err
		}
		if err := oneEach(); err != nil {
			t.Fatal(err)
		}
		consistently(t, 4*heartbeat, oneEach)
	})
}

func terminalState(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateShutdown,
		swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return true
	}
	return false
}

// recordedState checks an agent's local task record (tasks.json in the
// node's swarm dir) for a task's state.
func recordedState(path, taskID string, want swarm.TaskState) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var recs map[string]struct{ Status swarm.TaskStatus }
	if err := json.Unmarshal(b, &recs); err != nil {
		return err
	}
	if got := recs[taskID].Status.State; got != want {
		return fmt.Errorf("task %s is %q in %s, want %s", taskID, got, path, want)
	}
	return nil
}

// pollFast is Poll at millisecond granularity, for windows of a few
// milliseconds.
func pollFast(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}
