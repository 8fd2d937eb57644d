// Package raftnode wires hashicorp/raft for a manager: the TLS stream layer
// on the cluster port, raft-wal log and stable store, file snapshots, and
// the timing that gives sub-second-ish failover on a LAN.
package raftnode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/fsm"
	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// Timing is Raft's clock. Docker's swarm uses a 1 s tick and 10-tick
// elections (10 s or more to fail over); these defaults fail over in about
// a second on a LAN while staying clear of false elections.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	ApplyTimeout       time.Duration
}

// DefaultTiming is used when a Config leaves Timing zero.
var DefaultTiming = Timing{
	HeartbeatTimeout:   500 * time.Millisecond,
	ElectionTimeout:    500 * time.Millisecond,
	LeaderLeaseTimeout: 500 * time.Millisecond,
	ApplyTimeout:       4 * time.Second,
}

// Config configures one manager's Raft.
type Config struct {
	NodeID     string
	Advertise  string // host:port other managers dial
	Dir        string
	Listener   net.Listener        // the cluster port's Raft sub-listener
	DialTLS    func() *tls.Config  // current client TLS config (certificates rotate)
	AcceptPeer func(net.Conn) bool // vets an inbound Raft connection's certificate
	Store      *state.Store
	// DEK encrypts the Raft log entries and snapshots at rest; nil leaves
	// them plain.
	DEK       *encryption.Key
	Bootstrap bool // form a new one-member cluster (swarm init)
	Timing    Timing
	Log       *slog.Logger
	// Metrics counts writes (nil: none).
	Metrics *Metrics
}

// logCacheEntries and logCacheBytes bound the recent log entries kept in
// memory: the last few batched writes (entries hold up to 2,000 objects,
// about a megabyte), which followers read back within milliseconds. 4 MiB
// instead of 8 lowered the leader's peak during a 10,000-task wave by
// about 4 MiB at the same speed; logCacheQuiet empties it when calm.
const (
	logCacheEntries = 64
	logCacheBytes   = 4 << 20
	logCacheQuiet   = time.Second
)

// Node is a running Raft member.
type Node struct {
	Raft   *raft.Raft
	cfg    Config
	wal    *wal.WAL
	trans  *raft.NetworkTransport
	timing Timing
	cache  *logCache
}

// Open starts Raft on cfg.Dir, bootstrapping when asked and no state exists.
func Open(cfg Config) (*Node, error) {
	t := cfg.Timing
	if t.HeartbeatTimeout == 0 {
		t = DefaultTiming
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "wal"), 0o700); err != nil {
		return nil, err
	}
	hl := newHCLogger(cfg.Log)
	w, err := wal.Open(filepath.Join(cfg.Dir, "wal"), wal.WithLogger(hl.Named("wal")))
	if err != nil {
		return nil, fmt.Errorf("open raft log in %s: %w", cfg.Dir, err)
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hl.Named("snap"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open raft snapshots in %s: %w", cfg.Dir, err)
	}
	logs, snaps := encrypt(cfg.DEK, walAppends{w}, fileSnaps)
	snaps = cfg.Metrics.timeSnapshots(snaps)
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("advertise address %q: %w", cfg.Advertise, err)
	}
	sl := &streamLayer{ln: cfg.Listener, advertise: adv, dialTLS: cfg.DialTLS, accept: cfg.AcceptPeer}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  sl,
		MaxPool: 3,
		Timeout: 2 * time.Second,
		Logger:  hl.Named("net"),
	})

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = t.HeartbeatTimeout
	rc.ElectionTimeout = t.ElectionTimeout
	rc.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotInterval = 30 * time.Second
	rc.SnapshotThreshold = 4096
	rc.TrailingLogs = 4096
	rc.Logger = hl
	rc.LogOutput = io.Discard

	if cfg.Bootstrap {
		has, err := raft.HasExistingState(logs, w, snaps)
		if err != nil {
			w.Close()
			return nil, err
		}
		if !has {
			conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: raft.ServerAddress(cfg.Advertise)}}}
			if err := raft.BootstrapCluster(rc, logs, w, snaps, trans, conf); err != nil {
				w.Close()
				return nil, fmt.Errorf("bootstrap raft: %w", err)
			}
		}
	}
	// Recent entries stay in memory, decrypted and decoded: replication
	// to followers reads each one back (and the one before it, for its
	// term), which otherwise costs a read and decode of up to a megabyte
	// per entry.
	cached := newLogCache(logs, logCacheEntries, logCacheBytes, logCacheQuiet)
	r, err := raft.NewRaft(rc, cfg.Metrics.clockFSM(fsm.New(cfg.Store)), cached, w, snaps, trans)
	if err != nil {
		trans.Close()
		w.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	return &Node{Raft: r, cfg: cfg, wal: w, trans: trans, timing: t, cache: cached}, nil
}

// Shutdown stops Raft and closes its stores.
func (n *Node) Shutdown() error {
	err := n.Raft.Shutdown().Error()
	n.cache.close()
	n.trans.Close()
	if cerr := n.wal.Close(); err == nil {
		err = cerr
	}
	return err
}

// ErrNoLeader is returned when the cluster has no leader (quorum lost, or an
// election under way).
var ErrNoLeader = errdefs.Unavailable("The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online: restart the lost managers on their data dirs and they rejoin by themselves; if they are lost for good, run 'flotilla swarm init --force-new-cluster' on a surviving manager.")

// ErrOutcomeUnknown is returned when the leader lost its quorum while a
// write was in flight: the write may still be committed once a quorum is
// back, so the caller must check before retrying.
var ErrOutcomeUnknown = errdefs.Unavailable("The swarm lost its leader while applying this change, so it may or may not have been applied. Make sure more than half of the managers are online (restart the lost managers on their data dirs), then check the object and retry if needed.")

// Propose replicates a batch and waits until it is applied here. It fails
// fast when this node is not the leader or loses quorum; it never hangs
// longer than the apply timeout.
func (n *Node) Propose(ctx context.Context, b state.Batch) error {
	return n.ProposeAll(ctx, []state.Batch{b})
}

// ProposeAll replicates several batches in order and waits until all are
// applied here. They are handed to Raft at once, so it pipelines them
// (one replication round trip for the lot, not one per batch); each is
// still its own entry and commits on its own. The first error is
// returned; batches before it were applied, those after it may have been.
// It consumes the batches: an op's encoded object is dropped once its
// batch is encoded, since a wave's are megabytes (10,000 new tasks: 7 MB)
// that would otherwise stay live, beside the entries, until the commit.
func (n *Node) ProposeAll(ctx context.Context, bs []state.Batch) error {
	start := time.Now()
	timeout := n.timing.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	futures := make([]raft.ApplyFuture, 0, len(bs))
	handed := make([]time.Time, 0, len(bs))
	size := 0
	var first error
	for _, b := range bs {
		if b.Time.IsZero() {
			b.Time = time.Now().UTC()
		}
		data, err := fsm.EncodeBatch(b)
		if err != nil {
			first = err
			break
		}
		size += len(data)
		for i := range b.Ops {
			b.Ops[i].Object = nil
		}
		handed = append(handed, time.Now())
		futures = append(futures, n.Raft.Apply(data, timeout))
	}
	for i, f := range futures {
		if err := applyResult(f); err != nil && first == nil {
			first = err
		}
		n.cfg.Metrics.observeCommit(f, handed[i])
	}
	if first == nil {
		n.cfg.Metrics.observeApply(start, len(bs), size)
	}
	return first
}

func applyResult(f raft.ApplyFuture) error {
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout):
			return ErrNoLeader
		case errors.Is(err, raft.ErrLeadershipLost):
			return ErrOutcomeUnknown
		case errors.Is(err, raft.ErrRaftShutdown):
			return errdefs.Unavailable("this manager is shutting down; retry on another manager")
		}
		return err
	}
	if resp, ok := f.Response().(error); ok && resp != nil {
		return resp
	}
	return nil
}

// IsLeader reports whether this node leads.
func (n *Node) IsLeader() bool { return n.Raft.State() == raft.Leader }

// Leader returns the leader's node ID and address ("" when none).
func (n *Node) Leader() (id, addr string) {
	a, i := n.Raft.LeaderWithID()
	return string(i), string(a)
}

// Servers returns the current Raft configuration.
func (n *Node) Servers() ([]raft.Server, error) {
	f := n.Raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// Barrier waits until every committed entry is applied locally, so a new
// leader reads the state its predecessor committed.
func (n *Node) Barrier(timeout time.Duration) error { return n.Raft.Barrier(timeout).Error() }

// BarrierWithin is Barrier bounded as a whole (Raft's timeout bounds only
// the enqueueing): ErrNoLeader when it did not commit within timeout.
func (n *Node) BarrierWithin(timeout time.Duration) error {
	f := n.Raft.Barrier(timeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return ErrNoLeader
	}
}
