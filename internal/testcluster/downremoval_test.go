package testcluster_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/testcluster"
	"github.com/flotilla-org/flotilla/manager"
)

// downRemoval is the period the test sets; a node is Down after 3 missed
// heartbeats (750 ms here).
const downRemoval = 4 * time.Second

// setDownRemoval writes the setting as `flotilla swarm update
// --node-down-removal` does: read the spec, set the label, write it back.
func setDownRemoval(t *testing.T, via *testcluster.Node, v string) {
	t.Helper()
	updateSwarm(t, via, func(s *swarm.Spec) {
		s.Labels = maps.Clone(s.Labels)
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[manager.NodeDownRemovalLabel] = v
	})
}

func updateSwarm(t *testing.T, via *testcluster.Node, change func(*swarm.Spec)) {
	t.Helper()
	res, err := via.Client.SwarmInspect(reqCtx(t), client.SwarmInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change(&res.Swarm.Spec)
	if _, err := via.Client.SwarmUpdate(reqCtx(t), client.SwarmUpdateOptions{Version: res.Swarm.Version, Spec: res.Swarm.Spec}); err != nil {
		t.Fatalf("swarm update on %s: %v", via.Name, err)
	}
}

func shownDownRemoval(t *testing.T, via *testcluster.Node) string {
	t.Helper()
	res, err := via.Client.SwarmInspect(reqCtx(t), client.SwarmInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Swarm.Spec.Labels[manager.NodeDownRemovalLabel]
}

// listed reports whether via's node list has the node.
func listed(via *testcluster.Node, id string) func() (bool, error) {
	return func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		list, err := via.Client.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(list.Items, func(n swarm.Node) bool { return n.ID == id }), nil
	}
}

func stillListed(via *testcluster.Node, n *testcluster.Node) func() error {
	return func() error {
		ok, err := listed(via, n.ID)()
		if err == nil && !ok {
			err = fmt.Errorf("%s was removed", n)
		}
		return err
	}
}

func gone(via *testcluster.Node, n *testcluster.Node) func() error {
	return func() error {
		ok, err := listed(via, n.ID)()
		if err == nil && ok {
			err = fmt.Errorf("%s is still listed", n)
		}
		return err
	}
}

// comesBackRefused restarts a removed node, waits until its info shows the
// managers' refusal, and stops it again.
func comesBackRefused(t *testing.T, c *testcluster.Cluster, n *testcluster.Node) {
	t.Helper()
	n.Restart()
	c.Eventually(10*time.Second, func() error {
		info, err := n.Client.Info(reqCtx(t), client.InfoOptions{})
		if err != nil {
			return err
		}
		if info.Info.Swarm.Error == "" {
			return fmt.Errorf("removed %s restarted: no error in its info (%s)", n, info.Info.Swarm.LocalNodeState)
		}
		return nil
	})
	n.Stop()
}

// TestNodeDownRemoval: off by default; with a period set, a worker Down
// longer than it is removed and refused afterwards, one back in time is
// kept, and a down manager leaves Raft and the node list while the others
// keep their quorum.
func TestNodeDownRemoval(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 3, Workers: 2, HeartbeatPeriod: heartbeat})
	leader := c.Leader()
	w0, w1 := c.Nodes[3], c.Nodes[4]
	// A global service has a task on w0: removal deals with it as node rm.
	svc := createService(t, c, leader, global("everywhere"))
	waitConverged(t, c, leader, svc, len(c.Nodes), 15*time.Second)

	c.Run("OffByDefault", func(t *testing.T) {
		if v := shownDownRemoval(t, leader); v != "" {
			t.Fatalf("a new swarm shows node-down-removal %q, want none (off)", v)
		}
		w0.Stop()
		c.WaitDown(w0.ID)
		consistently(t, downRemoval/2, stillListed(leader, w0))
	})

	c.Run("WorkerRemovedAfterPeriod", func(t *testing.T) {
		setDownRemoval(t, c.Followers()[0], downRemoval.String()) // forwarded to the leader
		if v := shownDownRemoval(t, leader); v != downRemoval.String() {
			t.Fatalf("after the update the swarm shows %q, want %s", v, downRemoval)
		}
		// What the docker CLI does on `docker swarm update`: send the
		// spec back with another change; the setting stays.
		updateSwarm(t, leader, func(s *swarm.Spec) { s.Orchestration.TaskHistoryRetentionLimit = new(int64(3)) })
		// A client that drops the labels does not turn it off either.
		updateSwarm(t, leader, func(s *swarm.Spec) { s.Labels = nil })
		if v := shownDownRemoval(t, leader); v != downRemoval.String() {
			t.Fatalf("after updates without the setting the swarm shows %q, want %s kept", v, downRemoval)
		}
		c.Eventually(downRemoval+10*time.Second, gone(leader, w0))
		for _, m := range c.Followers() {
			c.Eventually(5*time.Second, gone(m, w0))
		}
		c.Eventually(10*time.Second, func() error {
			for _, tk := range mustTasks(t, leader, svc) {
				if tk.NodeID == w0.ID && tk.DesiredState == swarm.TaskStateRunning {
					return fmt.Errorf("task %s of the removed node is still wanted running", tk.ID)
				}
			}
			return nil
		})
		// Removed as by node rm: the node's certificate is refused.
		comesBackRefused(t, c, w0)
	})

	c.Run("BackInTimeIsKept", func(t *testing.T) {
		w1.Stop()
		c.WaitDown(w1.ID)
		consistently(t, downRemoval/4, stillListed(leader, w1)) // not before the period
		w1.Restart()
		c.WaitReady(w1.ID)
		consistently(t, downRemoval, stillListed(leader, w1))
	})

	c.Run("ManagerRemovedKeepingQuorum", func(t *testing.T) {
		f := c.Followers()[0]
		f.Stop()
		c.Eventually(downRemoval+10*time.Second, gone(leader, f))
		if n := raftMembers(t, leader); n != 2 {
			t.Errorf("raft has %d members after the removal, want 2", n)
		}
		// The two managers left still have a leader and accept writes.
		if err := updateSpec(reqCtx(t), c.Leader(), w1.ID, setLabel("after", "removal")); err != nil {
			t.Fatalf("write after removing a manager: %v", err)
		}
		// The removed manager coming back is refused and disturbs nothing.
		comesBackRefused(t, c, f)
		if err := updateSpec(reqCtx(t), c.Leader(), w1.ID, setLabel("after", "return")); err != nil {
			t.Fatalf("write after the removed manager came back: %v", err)
		}
	})
}
