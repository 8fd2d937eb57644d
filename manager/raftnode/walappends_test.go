package raftnode

import (
	"testing"

	"github.com/hashicorp/raft"
)

// appendSizes records the size of each append it is handed.
type appendSizes struct {
	*raft.InmemStore
	appends [][]int
}

func (c *appendSizes) StoreLogs(logs []*raft.Log) error {
	var sizes []int
	for _, l := range logs {
		sizes = append(sizes, len(l.Data))
	}
	c.appends = append(c.appends, sizes)
	return c.InmemStore.StoreLogs(logs)
}

// A wave's batch reaches the WAL in appends of at most about a megabyte
// (an entry larger than that alone), every entry in order; small entries
// still go in one append.
func TestWALAppendsBoundedBySize(t *testing.T) {
	c := &appendSizes{InmemStore: raft.NewInmemStore()}
	w := walAppends{c}
	var logs []*raft.Log
	for i, size := range []int{600 << 10, 600 << 10, 300 << 10, 2 << 20, 10, 10} {
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Term: 1, Data: make([]byte, size)})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	want := [][]int{{600 << 10}, {600 << 10, 300 << 10}, {2 << 20}, {10, 10}}
	if len(c.appends) != len(want) {
		t.Fatalf("appends %v, want %v", c.appends, want)
	}
	for i := range want {
		if len(c.appends[i]) != len(want[i]) || c.appends[i][0] != want[i][0] {
			t.Fatalf("append %d: %v, want %v", i, c.appends[i], want[i])
		}
	}
	for i := uint64(1); i <= 6; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("entry %d not stored: %v", i, err)
		}
	}
	c.appends = nil
	if err := w.StoreLogs([]*raft.Log{{Index: 7, Term: 1, Data: []byte("a")}, {Index: 8, Term: 1, Data: []byte("b")}}); err != nil || len(c.appends) != 1 {
		t.Fatalf("two small entries: %d appends (%v), want one", len(c.appends), err)
	}
}
