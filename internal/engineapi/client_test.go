package engineapi

import (
	"context"
	"net/http/httptest"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// The moby Go client negotiates its API version with the handler and
// decodes every answer.
func TestMobyClient(t *testing.T) {
	f := newFakeCluster()
	srv := httptest.NewServer(NewHandler(f))
	defer srv.Close()
	c, err := client.New(client.WithHost("tcp://" + srv.Listener.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	ping, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if ping.APIVersion != APIVersion || ping.OSType != "linux" || ping.SwarmStatus == nil ||
		ping.SwarmStatus.NodeState != swarm.LocalNodeStateActive || !ping.SwarmStatus.ControlAvailable {
		t.Errorf("ping = %+v (swarm %+v)", ping, ping.SwarmStatus)
	}
	if v := c.ClientVersion(); v != APIVersion {
		t.Errorf("negotiated version = %s, want %s", v, APIVersion)
	}

	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil || v.Version != Version || v.APIVersion != APIVersion {
		t.Errorf("ServerVersion = %+v, %v", v, err)
	}
	info, err := c.Info(ctx, client.InfoOptions{})
	if err != nil || info.Info.Swarm.NodeID != idA || info.Info.Name != "node-a" {
		t.Errorf("Info = %+v, %v", info.Info, err)
	}
	sw, err := c.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil || sw.Swarm.ID != f.sw.ID {
		t.Errorf("SwarmInspect = %+v, %v", sw, err)
	}

	nodes, err := c.NodeList(ctx, client.NodeListOptions{Filters: make(client.Filters).Add("role", "worker")})
	if err != nil || len(nodes.Items) != 2 {
		t.Fatalf("NodeList = %+v, %v", nodes, err)
	}
	n, err := c.NodeInspect(ctx, "node-b", client.NodeInspectOptions{})
	if err != nil || n.Node.ID != idB {
		t.Fatalf("NodeInspect = %+v, %v", n, err)
	}
	spec := n.Node.Spec
	spec.Availability = swarm.NodeAvailabilityPause
	if _, err := c.NodeUpdate(ctx, n.Node.ID, client.NodeUpdateOptions{Version: n.Node.Version, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if got := f.node(idB).Spec.Availability; got != swarm.NodeAvailabilityPause {
		t.Errorf("availability = %s", got)
	}
	// The version is now stale.
	_, err = c.NodeUpdate(ctx, n.Node.ID, client.NodeUpdateOptions{Version: n.Node.Version, Spec: spec})
	if !cerrdefs.IsConflict(err) {
		t.Errorf("stale update: %v, want a conflict", err)
	}
	_, err = c.NodeInspect(ctx, "nosuch", client.NodeInspectOptions{})
	if !cerrdefs.IsNotFound(err) || err.Error() != "Error response from daemon: node nosuch not found" {
		t.Errorf("NodeInspect(nosuch) = %v", err)
	}
	if _, err := c.NodeRemove(ctx, "node-c", client.NodeRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if c := f.recorded().nodeRemoves; len(c) != 1 || c[0] != (nodeRemoveCall{idC, true}) {
		t.Errorf("removes = %+v", c)
	}
}
