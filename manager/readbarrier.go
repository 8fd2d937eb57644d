package manager

import (
	"sync"
	"time"
)

// readBarrier confirms a leader's reads by committing a Raft barrier: an
// entry only a quorum in the leader's current term can commit. Raft's
// VerifyLeader was not enough: a leader paused and resumed counted
// heartbeat answers sent before its pause and answered a read from its
// stale replica (TestDurability found it in CI). Reads that arrive
// together share one barrier, always one started after they arrived, so a
// burst of reads costs one log entry.
type readBarrier struct {
	commit func() error

	mu      sync.Mutex
	next    *barrierRound
	running bool
}

type barrierRound struct {
	done    chan struct{}
	err     error
	readers int
}

// wait returns once a barrier begun after the call has committed, or its
// error.
func (b *readBarrier) wait() error {
	b.mu.Lock()
	if b.next == nil {
		b.next = &barrierRound{done: make(chan struct{})}
	}
	r := b.next
	r.readers++
	if !b.running {
		b.running = true
		go b.loop()
	}
	b.mu.Unlock()
	<-r.done
	return r.err
}

func (b *readBarrier) loop() {
	for {
		b.mu.Lock()
		r := b.next
		b.next = nil
		if r == nil {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		r.err = b.commit()
		close(r.done)
	}
}

// readBarrierTimeout bounds one barrier: a leader that cannot reach a
// quorum steps down within its lease anyway.
const readBarrierTimeout = time.Second
