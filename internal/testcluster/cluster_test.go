package testcluster_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/testcluster"
)

// Tier 2: whole swarms of in-process daemons, driven through the Engine API.

func reqCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// inspect reads a node through one node's API.
func inspect(t *testing.T, via *testcluster.Node, id string) swarm.Node {
	t.Helper()
	res, err := via.Client.NodeInspect(reqCtx(t), id, client.NodeInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s on %s: %v", id, via.Name, err)
	}
	return res.Node
}

// updateSpec reads a node through via, changes its spec and writes it back
// through via. Node objects also change under the user's feet (the leader
// records heartbeat status), so a conflict is retried with a fresh read.
func updateSpec(ctx context.Context, via *testcluster.Node, id string, change func(*swarm.NodeSpec)) error {
	var err error
	for range 5 {
		var res client.NodeInspectResult
		res, err = via.Client.NodeInspect(ctx, id, client.NodeInspectOptions{})
		if err != nil {
			return err
		}
		spec := res.Node.Spec
		change(&spec)
		_, err = via.Client.NodeUpdate(ctx, id, client.NodeUpdateOptions{Version: res.Node.Version, Spec: spec})
		if !cerrdefs.IsConflict(err) {
			return err
		}
	}
	return err
}

func setLabel(k, v string) func(*swarm.NodeSpec) {
	return func(s *swarm.NodeSpec) {
		s.Labels = maps.Clone(s.Labels)
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels[k] = v
	}
}

func labelIs(ctx context.Context, via *testcluster.Node, id, k, v string) error {
	res, err := via.Client.NodeInspect(ctx, id, client.NodeInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect on %s: %w", via.Name, err)
	}
	if got := res.Node.Spec.Labels[k]; got != v {
		return fmt.Errorf("on %s, label %s of %s is %q, want %q", via.Name, k, id, got, v)
	}
	return nil
}

func raftMembers(t *testing.T, via *testcluster.Node) int {
	t.Helper()
	info, err := via.Client.Info(reqCtx(t), client.InfoOptions{})
	if err != nil {
		t.Fatalf("info on %s: %v", via.Name, err)
	}
	return len(info.Info.Swarm.RemoteManagers)
}

// TestCluster forms 3 managers and 2 workers and exercises the node API
// across them: node list, writes through followers, optimistic
// concurrency, promote, demote and a worker restart.
func TestCluster(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 3, Workers: 2})
	leader := c.Leader()
	followers := c.Followers()
	if len(followers) != 2 {
		t.Fatalf("followers = %v, want 2", followers)
	}
	w0, w1 := c.Nodes[3], c.Nodes[4]

	c.Run("NodeList", func(t *testing.T) {
		for _, via := range append([]*testcluster.Node{leader}, followers...) {
			list, err := via.Client.NodeList(reqCtx(t), client.NodeListOptions{})
			if err != nil {
				t.Fatalf("node list on %s: %v", via.Name, err)
			}
			if len(list.Items) != len(c.Nodes) {
				t.Fatalf("%s lists %d nodes, want %d", via.Name, len(list.Items), len(c.Nodes))
			}
			leaders := 0
			for _, n := range list.Items {
				tn := c.Node(n.ID)
				if tn == nil {
					t.Errorf("%s lists unknown node %s", via.Name, n.ID)
					continue
				}
				if n.Description.Hostname != tn.Name {
					t.Errorf("node %s: hostname %q, want %q", n.ID, n.Description.Hostname, tn.Name)
				}
				if n.Status.State != swarm.NodeStateReady || n.Status.Addr != "127.0.0.1" {
					t.Errorf("node %s: status %+v, want ready on 127.0.0.1", tn.Name, n.Status)
				}
				if n.Spec.Availability != swarm.NodeAvailabilityActive {
					t.Errorf("node %s: availability %s", tn.Name, n.Spec.Availability)
				}
				isManager := strings.HasPrefix(tn.Name, "m")
				switch {
				case isManager && (n.Spec.Role != swarm.NodeRoleManager || n.ManagerStatus == nil):
					t.Errorf("manager %s: role %s, manager status %+v", tn.Name, n.Spec.Role, n.ManagerStatus)
				case isManager && (n.ManagerStatus.Addr != tn.Addr || n.ManagerStatus.Reachability != swarm.ReachabilityReachable):
					t.Errorf("manager %s: manager status %+v, want reachable at %s", tn.Name, n.ManagerStatus, tn.Addr)
				case !isManager && (n.Spec.Role != swarm.NodeRoleWorker || n.ManagerStatus != nil):
					t.Errorf("worker %s: role %s, manager status %+v", tn.Name, n.Spec.Role, n.ManagerStatus)
				}
				if n.ManagerStatus != nil && n.ManagerStatus.Leader {
					leaders++
					if n.ID != leader.ID {
						t.Errorf("%s shows %s as leader, want %s", via.Name, tn, leader)
					}
				}
			}
			if leaders != 1 {
				t.Errorf("%s shows %d leaders", via.Name, leaders)
			}
		}
		if n := raftMembers(t, leader); n != 3 {
			t.Errorf("raft has %d members, want 3", n)
		}
		// A worker has no control plane.
		_, err := w0.Client.NodeList(reqCtx(t), client.NodeListOptions{})
		if err == nil || !cerrdefs.IsUnavailable(err) {
			t.Errorf("node list on a worker: %v, want 503", err)
		}
	})

	c.Run("FollowerForwardsWrites", func(t *testing.T) {
		f, other := followers[0], followers[1]
		if err := updateSpec(reqCtx(t), f, w0.ID, setLabel("zone", "a")); err != nil {
			t.Fatalf("update through follower %s: %v", f.Name, err)
		}
		// The leader applied it before answering; the others follow.
		if err := labelIs(reqCtx(t), leader, w0.ID, "zone", "a"); err != nil {
			t.Fatal(err)
		}
		c.Eventually(5*time.Second, func() error { return labelIs(reqCtx(t), other, w0.ID, "zone", "a") })
		c.Eventually(5*time.Second, func() error { return labelIs(reqCtx(t), f, w0.ID, "zone", "a") })
	})

	c.Run("OversizeBodyThroughFollower", func(t *testing.T) {
		// A follower refuses what the leader would refuse, with the same
		// 400; forwarded, the leader reset the connection and the write
		// was reported as "may or may not have been applied".
		big := `{"Name":"big","Labels":{"k":"` + strings.Repeat("a", 8<<20) + `"},"TaskTemplate":{"ContainerSpec":{"Image":"fake"}}}`
		for _, via := range []*testcluster.Node{followers[0], leader} {
			code, body := rawRequest(t, via, http.MethodPost, "/v1.47/services/create", big)
			if code != http.StatusBadRequest || !strings.Contains(body, "too large") || strings.Contains(body, "may or may not") {
				t.Errorf("oversize create through %s: %d %s, want 400 'request body too large'", via.Name, code, body)
			}
		}
		if code, body := rawRequest(t, leader, http.MethodGet, "/v1.47/services/big", ""); code != http.StatusNotFound {
			t.Errorf("after refused creates, service big: %d %s, want 404", code, body)
		}
	})

	c.Run("StaleVersionConflicts", func(t *testing.T) {
		f := followers[0]
		before := inspect(t, leader, w0.ID)
		spec := before.Spec
		setLabel("zone", "b")(&spec)
		if _, err := f.Client.NodeUpdate(reqCtx(t), w0.ID, client.NodeUpdateOptions{Version: before.Version, Spec: spec}); err != nil {
			t.Fatalf("update: %v", err)
		}
		afterFirst := inspect(t, leader, w0.ID)
		setLabel("zone", "stale")(&spec)
		for _, via := range []*testcluster.Node{f, leader} {
			_, err := via.Client.NodeUpdate(reqCtx(t), w0.ID, client.NodeUpdateOptions{Version: before.Version, Spec: spec})
			if !cerrdefs.IsConflict(err) {
				t.Fatalf("stale update through %s: %v, want 409 conflict", via.Name, err)
			}
			if !strings.Contains(err.Error(), "out of sequence") {
				t.Errorf("stale update through %s: %q does not say it is out of sequence", via.Name, err)
			}
		}
		// swarm update with a stale version: Docker's words, nothing internal.
		sw, err := leader.Client.SwarmInspect(reqCtx(t), client.SwarmInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stale := sw.Swarm.Version
		stale.Index--
		_, err = leader.Client.SwarmUpdate(reqCtx(t), client.SwarmUpdateOptions{Version: stale, Spec: sw.Swarm.Spec})
		if !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "out of sequence") || strings.Contains(err.Error(), "op 0") {
			t.Errorf("stale swarm update: %v, want 409 'update out of sequence' without internal prefixes", err)
		}
		after := inspect(t, leader, w0.ID)
		if after.Version != afterFirst.Version || after.Spec.Labels["zone"] != "b" {
			t.Errorf("after refused updates: version %d labels %v, want version %d and zone=b",
				after.Version.Index, after.Spec.Labels, afterFirst.Version.Index)
		}
	})

	c.Run("PromoteDemote", func(t *testing.T) {
		if err := updateSpec(reqCtx(t), followers[1], w1.ID, func(s *swarm.NodeSpec) { s.Role = swarm.NodeRoleManager }); err != nil {
			t.Fatalf("promote %s: %v", w1.Name, err)
		}
		start := time.Now()
		c.Eventually(20*time.Second, func() error {
			n := inspect(t, leader, w1.ID)
			if n.ManagerStatus == nil || n.ManagerStatus.Reachability != swarm.ReachabilityReachable {
				return fmt.Errorf("%s: manager status %+v", w1.Name, n.ManagerStatus)
			}
			if m := raftMembers(t, leader); m != 4 {
				return fmt.Errorf("raft has %d members, want 4", m)
			}
			// Its own API now serves the control plane, from its replica.
			list, err := w1.Client.NodeList(reqCtx(t), client.NodeListOptions{})
			if err != nil {
				return fmt.Errorf("node list on promoted %s: %w", w1.Name, err)
			}
			if len(list.Items) != len(c.Nodes) {
				return fmt.Errorf("promoted %s lists %d nodes", w1.Name, len(list.Items))
			}
			return nil
		})
		t.Logf("promotion took %s", time.Since(start).Round(time.Millisecond))
		c.WaitReady(w1.ID)

		if err := updateSpec(reqCtx(t), leader, w1.ID, func(s *swarm.NodeSpec) { s.Role = swarm.NodeRoleWorker }); err != nil {
			t.Fatalf("demote %s: %v", w1.Name, err)
		}
		start = time.Now()
		c.Eventually(20*time.Second, func() error {
			n := inspect(t, leader, w1.ID)
			if n.Spec.Role != swarm.NodeRoleWorker || n.ManagerStatus != nil {
				return fmt.Errorf("%s: role %s, manager status %+v", w1.Name, n.Spec.Role, n.ManagerStatus)
			}
			if m := raftMembers(t, leader); m != 3 {
				return fmt.Errorf("raft has %d members, want 3", m)
			}
			if _, err := w1.Client.NodeList(reqCtx(t), client.NodeListOptions{}); !cerrdefs.IsUnavailable(err) {
				return fmt.Errorf("node list on demoted %s: %v, want 503", w1.Name, err)
			}
			return nil
		})
		t.Logf("demotion took %s", time.Since(start).Round(time.Millisecond))
		c.WaitReady(w1.ID)
	})

	c.Run("WorkerRestart", func(t *testing.T) {
		w0.Stop()
		start := time.Now()
		c.WaitDown(w0.ID)
		t.Logf("worker marked down after %s", time.Since(start).Round(time.Millisecond))
		w0.Restart()
		start = time.Now()
		c.WaitReady(w0.ID)
		t.Logf("worker ready again after %s", time.Since(start).Round(time.Millisecond))
		info, err := w0.Client.Info(reqCtx(t), client.InfoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.Info.Swarm.NodeID != w0.ID || info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateActive {
			t.Errorf("restarted worker: node %s state %s, want %s active", info.Info.Swarm.NodeID, info.Info.Swarm.LocalNodeState, w0.ID)
		}
		list, err := leader.Client.NodeList(reqCtx(t), client.NodeListOptions{})
		if err != nil || len(list.Items) != len(c.Nodes) {
			t.Errorf("after restart: %d nodes, %v", len(list.Items), err)
		}
		// Its labels survived.
		if err := labelIs(reqCtx(t), leader, w0.ID, "zone", "b"); err != nil {
			t.Error(err)
		}
	})
}

// TestLeaderFailover stops the leader: the others elect a new one, writes
// through a follower work again, and the old leader rejoins on restart.
func TestLeaderFailover(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 3, Workers: 1})
	old := c.Leader()
	w := c.Nodes[3]
	old.Stop()
	start := time.Now()
	leader := c.Leader()
	t.Logf("new leader %s elected %s after the old one stopped", leader, time.Since(start).Round(time.Millisecond))
	if leader == old {
		t.Fatalf("the stopped node is still the leader")
	}
	var follower *testcluster.Node
	for _, n := range c.Nodes[:3] {
		if n != old && n != leader {
			follower = n
		}
	}
	start = time.Now()
	c.Eventually(10*time.Second, func() error {
		return updateSpec(reqCtx(t), follower, w.ID, setLabel("after", "failover"))
	})
	t.Logf("write through follower %s succeeded %s after the election", follower, time.Since(start).Round(time.Millisecond))
	if err := labelIs(reqCtx(t), leader, w.ID, "after", "failover"); err != nil {
		t.Fatal(err)
	}
	// The new leader notices the old one is gone, and not the worker,
	// which moved its heartbeats to the new leader.
	c.WaitDown(old.ID)
	if n := inspect(t, leader, w.ID); n.Status.State != swarm.NodeStateReady {
		t.Errorf("worker is %s after the failover", n.Status.State)
	}
	n := inspect(t, leader, old.ID)
	if n.ManagerStatus == nil || n.ManagerStatus.Reachability != swarm.ReachabilityUnreachable || n.ManagerStatus.Leader {
		t.Errorf("stopped old leader: manager status %+v, want unreachable", n.ManagerStatus)
	}

	old.Restart()
	c.WaitReady(old.ID)
	c.Eventually(10*time.Second, func() error { return labelIs(reqCtx(t), old, w.ID, "after", "failover") })
	if n := raftMembers(t, c.Leader()); n != 3 {
		t.Errorf("raft has %d members after the old leader came back, want 3", n)
	}
}

// TestQuorumLoss stops two of three managers: writes on the survivor fail
// fast with an error that says why, reads still work, and writes work again
// once a second manager is back. The survivor is the old leader (it must
// step down) or a follower (it must not wait for a dead leader).
func TestQuorumLoss(t *testing.T) {
	for _, leaderSurvives := range []bool{true, false} {
		name := "LeaderSurvives"
		if !leaderSurvives {
			name = "FollowerSurvives"
		}
		t.Run(name, func(t *testing.T) { testQuorumLoss(t, leaderSurvives) })
	}
}

func testQuorumLoss(t *testing.T, leaderSurvives bool) {
	c := testcluster.New(t, testcluster.Options{Managers: 3})
	leader := c.Leader()
	followers := c.Followers()
	survivor, stopped := leader, followers
	if !leaderSurvives {
		survivor, stopped = followers[1], []*testcluster.Node{leader, followers[0]}
	}
	for _, n := range stopped {
		n.Stop()
	}

	start := time.Now()
	err := updateSpec(reqCtx(t), survivor, survivor.ID, setLabel("quorum", "lost"))
	took := time.Since(start)
	t.Logf("write without quorum: %v (after %s)", err, took.Round(time.Millisecond))
	if err == nil {
		t.Fatal("a write without quorum succeeded")
	}
	if msg := strings.ToLower(err.Error()); !strings.Contains(msg, "leader") && !strings.Contains(msg, "quorum") {
		t.Errorf("error %q says nothing of leader or quorum", err)
	}
	if !cerrdefs.IsUnavailable(err) {
		t.Errorf("error %v is not 503 Unavailable", err)
	}
	if took > 8*time.Second {
		t.Errorf("the write took %s to fail; it should fail within a few seconds", took)
	}

	// Reads are served from the local replica.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	list, err := survivor.Client.NodeList(ctx, client.NodeListOptions{})
	if err != nil || len(list.Items) != 3 {
		t.Fatalf("node list without quorum: %d nodes, %v", len(list.Items), err)
	}
	if err := labelIs(reqCtx(t), survivor, survivor.ID, "quorum", ""); err != nil {
		t.Errorf("the refused write left a trace: %v", err)
	}
	// Once the survivor knows there is no leader, info says so.
	c.Eventually(5*time.Second, func() error {
		info, err := survivor.Client.Info(reqCtx(t), client.InfoOptions{})
		if err != nil {
			return err
		}
		if !strings.Contains(info.Info.Swarm.Error, "does not have a leader") {
			return fmt.Errorf("info's swarm error is %q", info.Info.Swarm.Error)
		}
		return nil
	})

	stopped[0].Restart()
	start = time.Now()
	c.Eventually(20*time.Second, func() error {
		return updateSpec(reqCtx(t), survivor, survivor.ID, setLabel("quorum", "back"))
	})
	t.Logf("writes work again %s after a second manager restarted", time.Since(start).Round(time.Millisecond))
	c.Eventually(5*time.Second, func() error { return labelIs(reqCtx(t), stopped[0], survivor.ID, "quorum", "back") })
}

// TestLeaderDemotesItself demotes the leader through its own API: it
// hands leadership over, the new leader finishes the request, and the old
// leader carries on as a Ready worker.
func TestLeaderDemotesItself(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 3})
	old := c.Leader()
	if err := updateSpec(reqCtx(t), old, old.ID, func(s *swarm.NodeSpec) { s.Role = swarm.NodeRoleWorker }); err != nil {
		t.Fatalf("demote the leader: %v", err)
	}
	c.Eventually(20*time.Second, func() error {
		leader, err := c.FindLeader()
		if err != nil {
			return err
		}
		if leader == old {
			return errors.New("the demoted node still leads")
		}
		n := inspect(t, leader, old.ID)
		if n.Spec.Role != swarm.NodeRoleWorker || n.ManagerStatus != nil {
			return fmt.Errorf("old leader: role %s, manager status %+v", n.Spec.Role, n.ManagerStatus)
		}
		if m := raftMembers(t, leader); m != 2 {
			return fmt.Errorf("raft has %d members, want 2", m)
		}
		if old.IsManager(reqCtx(t)) {
			return errors.New("the old leader still serves as a manager")
		}
		return nil
	})
	c.WaitReady(old.ID)
}

// TestFullRestart stops every node and starts them again: the swarm comes
// back by itself with the same node IDs and takes writes.
func TestFullRestart(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 3, Workers: 1})
	c.StopAll()
	for _, n := range c.Nodes {
		n.Restart()
	}
	start := time.Now()
	c.WaitReady(c.IDs()...)
	t.Logf("all nodes Ready %s after the restart", time.Since(start).Round(time.Millisecond))
	for _, n := range c.Nodes {
		info, err := n.Client.Info(reqCtx(t), client.InfoOptions{})
		if err != nil || info.Info.Swarm.NodeID != n.ID {
			t.Errorf("%s after restart: node %q, %v", n.Name, info.Info.Swarm.NodeID, err)
		}
	}
	if m := raftMembers(t, c.Leader()); m != 3 {
		t.Errorf("raft has %d members, want 3", m)
	}
	c.Eventually(10*time.Second, func() error {
		return updateSpec(reqCtx(t), c.Nodes[1], c.Nodes[3].ID, setLabel("restarted", "yes"))
	})
}
