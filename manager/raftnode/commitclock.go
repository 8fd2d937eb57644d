package raftnode

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// hashicorp/raft tells a proposer only when its entry is applied (the
// Apply future resolves after the FSM ran), and has no hook at commit.
// The FSM is the first code of ours to see a committed entry: raft hands
// it only entries a quorum stored, in order. So commitClock notes when the
// FSM starts on each entry, and the proposer, once its future resolves,
// reads that time back by the entry's index: handed to Raft -> FSM start
// is the commit latency (plus any wait behind earlier entries' applies),
// distinct from the whole apply.

// commitRing is how many recent entries' start times are kept; a proposer
// reads its own back right after it is applied, so a few waves of writes
// are plenty. An entry whose slot was reused is not observed.
const commitRing = 1024

type commitClock struct {
	mu    sync.Mutex
	index [commitRing]uint64
	at    [commitRing]time.Time
}

// began records that the FSM starts applying entry index.
func (c *commitClock) began(index uint64) {
	now := time.Now()
	c.mu.Lock()
	c.index[index%commitRing], c.at[index%commitRing] = index, now
	c.mu.Unlock()
}

// startedAt is when the FSM started on entry index (false: not known).
func (c *commitClock) startedAt(index uint64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index[index%commitRing] != index {
		return time.Time{}, false
	}
	return c.at[index%commitRing], true
}

// clockedFSM is the FSM with its start on each entry noted.
type clockedFSM struct {
	raft.FSM
	clock *commitClock
}

func (f clockedFSM) Apply(l *raft.Log) interface{} {
	f.clock.began(l.Index)
	return f.FSM.Apply(l)
}

// observeCommit records the commit latency of an entry handed to Raft at
// handed whose future has resolved; failed entries are not observed.
func (m *Metrics) observeCommit(f raft.ApplyFuture, handed time.Time) {
	if m == nil || f.Error() != nil {
		return
	}
	if at, ok := m.clock.startedAt(f.Index()); ok {
		m.commit.Observe(at.Sub(handed).Seconds())
	}
}

// clockFSM wraps fsm so that commits are timed (fsm itself when m is nil).
func (m *Metrics) clockFSM(fsm raft.FSM) raft.FSM {
	if m == nil {
		return fsm
	}
	return clockedFSM{FSM: fsm, clock: &m.clock}
}
