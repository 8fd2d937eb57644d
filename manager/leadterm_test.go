package manager

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
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
