package e2e

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/security/ca"
	"github.com/moby/moby/api/types/swarm"
)

// Only a manager may relay heartbeats and status reports for other
// nodes: a worker's certificate, good for its own session, is refused on
// /rpc/relay, and what it sent changes nothing.
func TestRelayNeedsAManagerCertificate(t *testing.T) {
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	dir := filepath.Join(w1.dataDir, "swarm", "certs")
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	root, err := ca.ParseRootCA(read("ca.crt"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ca.ClientTLSConfig(read("node.crt"), read("node.key"), root, clusterport.ProtoRPC)
	if err != nil {
		t.Fatal(err)
	}
	cli := nodeapi.NewClient(func() *tls.Config { return cfg }, func() uint64 { return 1 })
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var hb nodeapi.HeartbeatResponse
	if err := cli.Call(ctx, m1.addr, nodeapi.PathHeartbeat, nodeapi.HeartbeatRequest{Addr: w1.addr}, &hb); err != nil {
		t.Fatalf("the worker's own heartbeat with its certificate: %v", err)
	}
	// Speak for the manager: its hostname would change if taken.
	forged := nodeapi.RelayRequest{Beats: []nodeapi.RelayedBeat{{Node: m1.id, Beat: nodeapi.HeartbeatRequest{Addr: m1.addr}}}}
	forged.Beats[0].Beat.Description = &swarm.NodeDescription{Hostname: "forged"}
	err = cli.Call(ctx, m1.addr, nodeapi.PathRelay, forged, nil)
	if !errdefs.Is(err, errdefs.KindForbidden) {
		t.Fatalf("relay with a worker's certificate: %v, want Forbidden", err)
	}
	consistently(t, 2*time.Second, rowsMatch(m1, func(m map[string]nodeRow) error {
		if _, ok := m["forged"]; ok {
			return errdefs.Invalid("the forged relay renamed %s", m1)
		}
		return nil
	}))
}
