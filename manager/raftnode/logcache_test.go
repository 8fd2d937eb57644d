package raftnode

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// countingStore counts reads that reach the store.
type countingStore struct {
	raft.LogStore
	reads int
	fail  error
}

func (s *countingStore) GetLog(i uint64, l *raft.Log) error {
	s.reads++
	return s.LogStore.GetLog(i, l)
}

func (s *countingStore) StoreLogs(logs []*raft.Log) error {
	if s.fail != nil {
		return s.fail
	}
	return s.LogStore.StoreLogs(logs)
}

func TestLogCacheBoundsBytesAndEntries(t *testing.T) {
	store := &countingStore{LogStore: raft.NewInmemStore()}
	c := newLogCache(store, 4, 3*(1000+64), 0)
	entry := func(i uint64, size int) *raft.Log { return &raft.Log{Index: i, Term: 1, Data: make([]byte, size)} }
	for i := uint64(1); i <= 5; i++ {
		if err := c.StoreLog(entry(i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	get := func(i uint64) {
		t.Helper()
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil || l.Index != i || len(l.Data) != 1000 {
			t.Fatalf("GetLog(%d): %+v, %v", i, l, err)
		}
	}
	// Three entries fit the bytes: 3, 4, 5 come from memory.
	for _, i := range []uint64{3, 4, 5} {
		get(i)
	}
	if store.reads != 0 {
		t.Fatalf("%d reads reached the store for cached entries", store.reads)
	}
	get(2) // evicted: read from the store, still there
	if store.reads != 1 {
		t.Fatalf("an evicted entry was not read from the store (%d reads)", store.reads)
	}
	// Small entries: the count bounds them.
	for i := uint64(6); i <= 11; i++ {
		if err := c.StoreLog(entry(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.logs) != 4 || len(c.order) != 4 || c.order[0] != 8 {
		t.Fatalf("cache holds %d entries from %v; want the 4 newest", len(c.logs), c.order)
	}
	// A truncation empties the cache; a failed write too.
	if err := c.DeleteRange(10, 11); err != nil {
		t.Fatal(err)
	}
	if len(c.logs) != 0 || c.size != 0 {
		t.Fatalf("cache after DeleteRange: %d entries, %d bytes", len(c.logs), c.size)
	}
	store.fail = errors.New("disk full")
	if err := c.StoreLog(entry(10, 5)); err == nil || len(c.logs) != 0 {
		t.Fatalf("a failed write: %v, %d cached", err, len(c.logs))
	}
}

// Once no entry came for the quiet period, the cache keeps only the
// newest entry; the others are still read from the store.
func TestLogCacheTrimsWhenQuiet(t *testing.T) {
	store := &countingStore{LogStore: raft.NewInmemStore()}
	c := newLogCache(store, 64, 1<<20, 20*time.Millisecond)
	defer c.close()
	for i := uint64(1); i <= 3; i++ {
		if err := c.StoreLog(&raft.Log{Index: i, Term: 1, Data: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.RLock()
		n, size, first := len(c.logs), c.size, c.order
		c.mu.RUnlock()
		if n == 1 && len(first) == 1 && first[0] == 3 && size == 1000+64 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a quiet period the cache holds %d entries (%v, %d bytes); want only the newest", n, first, size)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var l raft.Log
	if err := c.GetLog(3, &l); err != nil || store.reads != 0 {
		t.Fatalf("the newest entry: %v, %d store reads", err, store.reads)
	}
	if err := c.GetLog(1, &l); err != nil || l.Index != 1 || store.reads != 1 {
		t.Fatalf("a trimmed entry: %+v, %v, %d store reads", l, err, store.reads)
	}
	// Writes go on after a trim.
	if err := c.StoreLog(&raft.Log{Index: 4, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.GetLog(4, &l); err != nil || store.reads != 1 {
		t.Fatalf("an entry written after the trim: %v, %d store reads", err, store.reads)
	}
}
