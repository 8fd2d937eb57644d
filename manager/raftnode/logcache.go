package raftnode

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// logCache keeps the most recent log entries in memory, decoded, in
// front of the WAL: replication reads each new entry back (and the one
// before it, for its term) once per follower. It is bounded by bytes as
// well as by count, where raft.LogCache counts entries only: an entry
// may hold 2,000 tasks (megabytes), and 64 of those kept a manager's heap
// 30 MB larger while it placed 10,000 tasks.
//
// Replication reads an entry back within milliseconds of its write, so
// once no entry came for quiet, all but the newest (whose term the next
// append needs) go: a manager does not hold the last wave's megabytes
// for as long as the cluster stays calm. A follower that lagged further
// reads from the WAL (BenchmarkGetLogFromWAL: about 2 ms per megabyte).
type logCache struct {
	raft.LogStore
	maxEntries, maxBytes int
	quiet                time.Duration

	mu    sync.RWMutex
	logs  map[uint64]*raft.Log
	order []uint64 // indexes in the cache, oldest first
	size  int
	calm  *time.Timer // fires quiet after the last write: trims
}

func newLogCache(store raft.LogStore, maxEntries, maxBytes int, quiet time.Duration) *logCache {
	return &logCache{LogStore: store, maxEntries: maxEntries, maxBytes: maxBytes, quiet: quiet, logs: map[uint64]*raft.Log{}}
}

func entrySize(l *raft.Log) int { return len(l.Data) + len(l.Extensions) + 64 }

func (c *logCache) GetLog(index uint64, out *raft.Log) error {
	c.mu.RLock()
	l := c.logs[index]
	c.mu.RUnlock()
	if l != nil {
		*out = *l
		return nil
	}
	return c.LogStore.GetLog(index, out)
}

func (c *logCache) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		// What was written is unknown: read it back from the store.
		c.clear()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		if old := c.logs[l.Index]; old != nil {
			c.size -= entrySize(old) // rewritten after a truncation
		} else {
			c.order = append(c.order, l.Index)
		}
		c.logs[l.Index] = l
		c.size += entrySize(l)
	}
	c.evict(c.maxEntries, c.maxBytes)
	if c.quiet > 0 {
		if c.calm == nil {
			c.calm = time.AfterFunc(c.quiet, c.trim)
		} else {
			c.calm.Reset(c.quiet)
		}
	}
	return nil
}

// evict drops the oldest entries until at most entries of at most bytes
// are left. c.mu is held.
func (c *logCache) evict(entries, bytes int) {
	for len(c.order) > 0 && (len(c.order) > entries || c.size > bytes) {
		if old := c.logs[c.order[0]]; old != nil {
			c.size -= entrySize(old)
			delete(c.logs, c.order[0])
		}
		c.order = c.order[1:]
	}
	if len(c.order) == 0 {
		c.order = nil // let the backing array go
	}
}

// trim keeps only the newest entry: the cluster went quiet.
func (c *logCache) trim() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evict(1, math.MaxInt)
	c.order = slices.Clone(c.order) // not the wave's backing array
}

// close stops the quiet timer.
func (c *logCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calm != nil {
		c.calm.Stop()
	}
}

func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.clear()
	return c.LogStore.DeleteRange(lo, hi)
}

func (c *logCache) clear() {
	c.mu.Lock()
	c.logs, c.order, c.size = map[uint64]*raft.Log{}, nil, 0
	c.mu.Unlock()
}
