package manager

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Every reader is answered by a barrier that began after it arrived, and
// readers that arrive together share one.
func TestReadBarrierStartsAfterEachReader(t *testing.T) {
	var rounds atomic.Int32
	var startedAt sync.Map // round → start time
	release, running := make(chan struct{}), make(chan struct{})
	b := &readBarrier{commit: func() error {
		n := rounds.Add(1)
		startedAt.Store(n, time.Now())
		if n == 1 {
			close(running)
			<-release // the first barrier is slow: readers pile up behind it
		}
		return nil
	}}
	first := make(chan error, 1)
	go func() { first <- b.wait() }()
	<-running
	arrived := time.Now()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.wait() }()
	}
	// Poll, with a deadline, until all ten wait for the next barrier.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		queued := b.next != nil && b.next.readers == 10
		b.mu.Unlock()
		if queued {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ten readers never all waited for the next barrier")
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := rounds.Load(); n != 2 {
		t.Errorf("%d barriers for 11 readers (one running, ten waiting), want 2", n)
	}
	if v, ok := startedAt.Load(int32(2)); !ok || v.(time.Time).Before(arrived) {
		t.Errorf("the waiting readers were answered by a barrier begun before they arrived")
	}
}

func TestReadBarrierError(t *testing.T) {
	lost := errors.New("leadership lost")
	b := &readBarrier{commit: func() error { return lost }}
	if err := b.wait(); !errors.Is(err, lost) {
		t.Errorf("wait = %v, want the barrier's error", err)
	}
}
