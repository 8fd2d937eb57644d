package testcluster_test

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/testcluster"
)

// freeAddrOn reserves a port on another loopback IP.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// movedTo waits until the leader records the manager at addr, reachable,
// and a worker's manager list names addr.
func movedTo(t *testing.T, c *testcluster.Cluster, m, worker *testcluster.Node, addr string) {
	t.Helper()
	c.Eventually(20*time.Second, func() error {
		n := inspect(t, c.Leader(), m.ID)
		if n.ManagerStatus == nil || n.ManagerStatus.Addr != addr || n.ManagerStatus.Reachability != swarm.ReachabilityReachable {
			return fmt.Errorf("%s on the leader: manager status %+v, want reachable at %s", m, n.ManagerStatus, addr)
		}
		info, err := worker.Client.Info(reqCtx(t), client.InfoOptions{})
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(info.Info.Swarm.RemoteManagers, func(p swarm.Peer) bool { return p.NodeID == m.ID && p.Addr == addr }) {
			return fmt.Errorf("%s's managers %v do not have %s at %s", worker, info.Info.Swarm.RemoteManagers, m, addr)
		}
		return nil
	})
}

// TestManagerMovesAddress moves a follower and then the leader of three
// managers to new IPs and ports; both keep their node IDs and Raft
// membership, so with the third manager stopped the two moved ones still
// elect a leader and take writes.
func TestManagerMovesAddress(t *testing.T) {
	c := testcluster.New(t, testcluster.Options{Managers: 3, Workers: 1})
	w0 := c.Nodes[3]
	follower := c.Followers()[0]
	follower.Move(freeAddrOn(t, "127.0.0.3"))
	movedTo(t, c, follower, w0, follower.Addr)

	leader := c.Leader()
	leader.Move(freeAddrOn(t, "127.0.0.4"))
	movedTo(t, c, leader, w0, leader.Addr)
	c.WaitReady(c.IDs()...)

	for _, n := range c.Nodes[:3] {
		if n != leader && n != follower {
			n.Stop()
		}
	}
	if err := updateSpec(reqCtx(t), c.Leader(), w0.ID, setLabel("moved", "both")); err != nil {
		t.Fatalf("write with only the two moved managers up: %v", err)
	}
}
