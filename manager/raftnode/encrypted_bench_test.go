package raftnode

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// BenchmarkLogStore compares writing and reading Raft entries through
// raft-wal plain and sealed with a DEK: the cost encryption at rest adds.
func BenchmarkLogStore(b *testing.B) {
	for _, sealed := range []bool{false, true} {
		name := "plain"
		if sealed {
			name = "sealed"
		}
		b.Run(name, func(b *testing.B) {
			w := openWAL(b, b.TempDir())
			var logs raft.LogStore = w
			if sealed {
				dek := newDEK(b)
				logs, _ = encrypt(dek, w, nil)
			}
			data := bytes.Repeat([]byte("x"), 1024)
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := range b.N {
				l := &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data}
				if err := logs.StoreLogs([]*raft.Log{l}); err != nil {
					b.Fatal(err)
				}
				var got raft.Log
				if err := logs.GetLog(l.Index, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
