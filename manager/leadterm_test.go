package manager

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/manager/dispatcher"
	"github.com/flotilla-org/flotilla/manager/orchestrator"
	"github.com/flotilla-org/flotilla/manager/scheduler"
	"github.com/flotilla-org/flotilla/manager/state"
)

// A failed barrier is retried while the manager leads, so a new leader
// still becomes ready; it stops when leadership ends.
func TestBarrierFailureIsRetried(t *testing.T) {
	var calls atomic.Int32
	leading := atomic.Bool{}
	leading.Store(true)
	m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		barrier: func(time.Duration) error {
			if calls.Add(1) <= 3 {
				return errors.New("barrier timed out")
			}
			return nil
		},
		leading: leading.Load}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !m.awaitBarrier(ctx) {
		t.Fatal("the barrier did not pass after 3 failures")
	}
	if calls.Load() != 4 {
		t.Errorf("barrier called %d times, want 4", calls.Load())
	}

	// A barrier that keeps failing gives up once leadership is lost.
	calls.Store(-1000)
	done := make(chan bool)
	go func() { done <- m.awaitBarrier(ctx) }()
	leading.Store(false)
	select {
	case ok := <-done:
		if ok {
			t.Error("awaitBarrier passed although the barrier never did")
		}
	case <-ctx.Done():
		t.Fatal("awaitBarrier kept retrying after leadership was lost")
	}
}

// Leadership lost and regained between two looks shows on Raft's leader
// channel as true followed by true, in a higher term: the old term's loops
// stop and the new term runs its own barrier before its loops start again.
func TestRegainedLeadershipStartsANewTerm(t *testing.T) {
	var term atomic.Uint64
	term.Store(1)
	leaderCh := make(chan bool, 1)
	var barriers atomic.Int32
	type start struct {
		term uint64
		ctx  context.Context
	}
	starts := make(chan start, 10)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := state.NewStore()
	m := &Manager{log: log, store: store,
		cfg: Config{LeaderLoops: []func(context.Context, *Manager){func(ctx context.Context, m *Manager) {
			starts <- start{m.raftTerm(), ctx}
			<-ctx.Done()
		}}},
		barrier:  func(time.Duration) error { barriers.Add(1); return nil },
		leading:  func() bool { return true },
		leaderCh: leaderCh, raftTerm: term.Load,
		stop: make(chan struct{}), done: make(chan struct{})}
	refuse := func(context.Context, []state.Batch) error { return errors.New("no raft in this test") }
	m.disp = dispatcher.New(store, refuse, log)
	m.orch = orchestrator.New(store, func(context.Context, []state.Op) error { return errors.New("no raft in this test") }, scheduler.Scheduler{}, log)
	go m.watchLeadership()
	defer func() {
		close(m.stop)
		<-m.done
	}()
	next := func(what string) start {
		t.Helper()
		select {
		case s := <-starts:
			return s
		case <-time.After(10 * time.Second):
			t.Fatalf("the leader loops did not start %s", what)
			return start{}
		}
	}

	leaderCh <- true
	first := next("on election")
	if first.term != 1 {
		t.Fatalf("loops started in term %d, want 1", first.term)
	}
	term.Store(3)
	leaderCh <- true
	second := next("when leadership was regained in a new term")
	if second.term != 3 {
		t.Errorf("loops restarted in term %d, want 3", second.term)
	}
	if first.ctx.Err() == nil {
		t.Error("the loops of term 1 still run in term 3")
	}
	if n := barriers.Load(); n != 2 {
		t.Errorf("%d barriers, want one per term (2)", n)
	}
	if err := m.waitReady(); err != nil {
		t.Errorf("the new term is not ready: %v", err)
	}
}
