package raftnode

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkGetLogFromWAL is what replication pays for an entry that is no
// longer in the log cache: a 1 MB entry (2,000 tasks) read back from the
// WAL, sealed with a DEK.
func BenchmarkGetLogFromWAL(b *testing.B) {
	w := openWAL(b, b.TempDir())
	logs, _ := encrypt(newDEK(b), w, nil)
	data := bytes.Repeat([]byte("x"), 1<<20)
	for i := range 8 {
		if err := logs.StoreLogs([]*raft.Log{{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data}}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var got raft.Log
		if err := logs.GetLog(uint64(i%8+1), &got); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
