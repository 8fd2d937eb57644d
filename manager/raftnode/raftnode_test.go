package raftnode_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/raftnode"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// fast keeps elections quick in tests, with a lease long enough that a
// leader on a loaded machine (and under -race) does not step down while
// it adds members.
var fast = raftnode.Timing{
	HeartbeatTimeout:   300 * time.Millisecond,
	ElectionTimeout:    300 * time.Millisecond,
	LeaderLeaseTimeout: 300 * time.Millisecond,
	ApplyTimeout:       2 * time.Second,
}

// certs returns a server config and a client config (for the Raft ALPN)
// sharing one self-signed certificate for 127.0.0.1.
func certs(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "manager"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	server = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	client = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool, NextProtos: []string{clusterport.ProtoRaft}}
	return server, client
}

// member is one manager's Raft on its own cluster port.
type member struct {
	id    string
	dir   string
	mux   *clusterport.Mux
	store *state.Store
	node  *raftnode.Node
	dek   *encryption.Key // nil: plain Raft data
	// metrics counts the member's writes (nil: not counted).
	metrics *raftnode.Metrics
}

type harness struct {
	t              *testing.T
	server, client *tls.Config
	log            *slog.Logger
}

func newHarness(t *testing.T) *harness {
	s, c := certs(t)
	return &harness{t: t, server: s, client: c, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// open starts a member on a new port (or m's old one, to restart it).
func (h *harness) open(m *member, bootstrap bool) *member {
	h.t.Helper()
	addr := "127.0.0.1:0"
	if m.mux != nil {
		addr = m.mux.Addr().String()
	}
	mux, err := clusterport.Listen(addr, h.server, h.log)
	if err != nil {
		h.t.Fatal(err)
	}
	m.mux = mux
	m.store = state.NewStore()
	done := make(chan error, 1)
	go func() {
		var err error
		m.node, err = raftnode.Open(raftnode.Config{
			NodeID: m.id, Advertise: mux.Addr().String(), Dir: m.dir,
			Listener: mux.Sub(clusterport.ProtoRaft), DialTLS: func() *tls.Config { return h.client },
			Store: m.store, DEK: m.dek, Bootstrap: bootstrap, Timing: fast, Log: h.log, Metrics: m.metrics,
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			h.t.Fatalf("open %s: %v", m.id, err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatalf("open %s hangs (a raft-wal reopen in the same process?)", m.id)
	}
	h.t.Cleanup(func() { m.stop() })
	return m
}

func (h *harness) newMember(id string, bootstrap bool) *member {
	return h.open(&member{id: id, dir: filepath.Join(h.t.TempDir(), id)}, bootstrap)
}

func (m *member) stop() {
	if m.node != nil {
		_ = m.node.Shutdown()
		m.node = nil
	}
	if m.mux != nil {
		m.mux.Close()
	}
}

func (m *member) addr() string { return m.mux.Addr().String() }

func waitFor(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after %s: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitLeader(t *testing.T, ms ...*member) *member {
	t.Helper()
	var leader *member
	waitFor(t, 10*time.Second, func() error {
		for _, m := range ms {
			if m.node != nil && m.node.IsLeader() {
				leader = m
				return nil
			}
		}
		return errors.New("no leader")
	})
	return leader
}

func createNode(id string) state.Batch {
	n := &state.Node{}
	n.ID = id
	n.Spec.Role = swarm.NodeRoleWorker
	return state.Batch{Ops: []state.Op{state.NewOp(state.TableNodes, state.ActionCreate, n, 0)}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// One manager: bootstrap, propose, refusals come back as errors, and a
// restart on the same directory rebuilds the state from the log.
func TestBootstrapProposeRestart(t *testing.T) {
	h := newHarness(t)
	a := h.newMember("a", true)
	waitLeader(t, a)
	if id, addr := a.node.Leader(); id != "a" || addr != a.addr() {
		t.Errorf("Leader() = %q, %q", id, addr)
	}
	servers, err := a.node.Servers()
	if err != nil || len(servers) != 1 || string(servers[0].ID) != "a" || string(servers[0].Address) != a.addr() {
		t.Fatalf("servers = %+v, %v", servers, err)
	}
	for i := range 5 {
		if err := a.node.Propose(ctx(t), createNode(fmt.Sprintf("n%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	n := a.store.Node("n0")
	if n == nil || n.CreatedAt.IsZero() || n.CreatedAt.Location() != time.UTC {
		t.Errorf("node n0 = %+v: Propose should stamp the batch with the proposer's UTC clock", n)
	}
	err = a.node.Propose(ctx(t), createNode("n0"))
	if !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate create: %v, want the FSM's conflict", err)
	}
	if err := a.node.Barrier(time.Second); err != nil {
		t.Error(err)
	}
	want := len(a.store.Nodes())

	a.stop()
	h.open(a, true) // bootstrap again is a no-op on existing state
	waitLeader(t, a)
	waitFor(t, 5*time.Second, func() error {
		if got := len(a.store.Nodes()); got != want {
			return fmt.Errorf("%d nodes after restart, want %d", got, want)
		}
		return nil
	})
	if err := a.node.Propose(ctx(t), createNode("after-restart")); err != nil {
		t.Fatal(err)
	}
	if servers, _ := a.node.Servers(); len(servers) != 1 {
		t.Errorf("restart changed the configuration: %+v", servers)
	}
}

// Three managers over TLS on their cluster ports: replication, follower
// refusal, failover, and fast failure without quorum.
func TestClusterFailoverAndQuorumLoss(t *testing.T) {
	h := newHarness(t)
	a := h.newMember("a", true)
	waitLeader(t, a)
	b := h.newMember("b", false)
	c := h.newMember("c", false)
	for _, m := range []*member{b, c} {
		if err := a.node.Raft.AddVoter(raft.ServerID(m.id), raft.ServerAddress(m.addr()), 0, 5*time.Second).Error(); err != nil {
			t.Fatalf("add %s: %v", m.id, err)
		}
	}
	if err := a.node.Propose(ctx(t), createNode("x")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{b, c} {
		waitFor(t, 5*time.Second, func() error {
			if m.store.Node("x") == nil {
				return fmt.Errorf("%s has not applied x", m.id)
			}
			return nil
		})
		if id, _ := m.node.Leader(); id != "a" {
			t.Errorf("%s sees leader %q", m.id, id)
		}
	}

	// A follower does not propose; it says so at once.
	start := time.Now()
	err := b.node.Propose(ctx(t), createNode("y"))
	if !errors.Is(err, raftnode.ErrNoLeader) || time.Since(start) > time.Second {
		t.Errorf("propose on a follower: %v after %s, want ErrNoLeader at once", err, time.Since(start))
	}

	a.stop()
	start = time.Now()
	leader := waitLeader(t, b, c)
	t.Logf("%s leads %s after the leader stopped", leader.id, time.Since(start).Round(time.Millisecond))
	if err := leader.node.Propose(ctx(t), createNode("z")); err != nil {
		t.Fatal(err)
	}
	survivor := b
	if leader == b {
		survivor = c
	}
	waitFor(t, 5*time.Second, func() error {
		if survivor.store.Node("z") == nil {
			return errors.New("z not replicated to the other survivor")
		}
		return nil
	})

	// Two of three gone: the last one fails writes quickly, never hangs.
	survivor.stop()
	start = time.Now()
	err = leader.node.Propose(ctx(t), createNode("lost"))
	took := time.Since(start)
	t.Logf("propose without quorum: %v after %s", err, took.Round(time.Millisecond))
	// The write was in flight when the lease ran out: its outcome is
	// unknown, and the error must say so rather than claim it failed.
	if !(errors.Is(err, raftnode.ErrNoLeader) || errors.Is(err, raftnode.ErrOutcomeUnknown)) || !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Errorf("propose without quorum = %v, want ErrNoLeader or ErrOutcomeUnknown", err)
	}
	if took > fast.ApplyTimeout+time.Second {
		t.Errorf("propose without quorum took %s", took)
	}
	if leader.store.Node("lost") != nil {
		t.Error("a write without quorum was applied")
	}

	// A restarted manager restores quorum.
	h.open(survivor, false)
	waitLeader(t, leader, survivor)
	waitFor(t, 10*time.Second, func() error {
		for _, m := range []*member{leader, survivor} {
			if m.node.IsLeader() {
				return m.node.Propose(ctx(t), createNode("back"))
			}
		}
		return errors.New("no leader")
	})
}

func TestOpenErrors(t *testing.T) {
	h := newHarness(t)
	mux, err := clusterport.Listen("127.0.0.1:0", h.server, h.log)
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	_, err = raftnode.Open(raftnode.Config{
		NodeID: "a", Advertise: "not an address", Dir: t.TempDir(),
		Listener: mux.Sub(clusterport.ProtoRaft), DialTLS: func() *tls.Config { return h.client },
		Store: state.NewStore(), Bootstrap: true, Timing: fast, Log: h.log,
	})
	if err == nil || !strings.Contains(err.Error(), "advertise address") {
		t.Errorf("Open with a bad advertise address: %v", err)
	}
	// The failed Open released the WAL: a second Open on the dir works.
	dir := t.TempDir()
	cfg := raftnode.Config{
		NodeID: "a", Advertise: "bad", Dir: dir,
		Listener: mux.Sub(clusterport.ProtoRaft), DialTLS: func() *tls.Config { return h.client },
		Store: state.NewStore(), Bootstrap: true, Timing: fast, Log: h.log,
	}
	if _, err := raftnode.Open(cfg); err == nil {
		t.Fatal("bad advertise accepted")
	}
	cfg.Advertise = mux.Addr().String()
	n, err := raftnode.Open(cfg)
	if err != nil {
		t.Fatalf("Open after a failed Open on the same dir: %v", err)
	}
	_ = n.Shutdown()
}
