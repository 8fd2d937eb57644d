package raftnode

import "github.com/hashicorp/raft"

// walAppendBytes bounds the entry data handed to the WAL in one append.
const walAppendBytes = 1 << 20

// walAppends hands raft's batches to the WAL in appends of about
// walAppendBytes: raft-wal writes an append through one buffer that
// grows to the largest append (rounded up to a power of two) and keeps
// it until the segment is full. Raft batches every entry waiting, so a
// wave's five entries of 1.3 MB made it 8 MiB on every manager, for as
// long as the 64 MiB segment lasted. Each append is one fsync more; only
// a batch over the bound pays it.
type walAppends struct {
	raft.LogStore
}

func (w walAppends) StoreLogs(logs []*raft.Log) error {
	for len(logs) > 0 {
		n, size := 0, 0
		for n < len(logs) && (n == 0 || size+len(logs[n].Data) <= walAppendBytes) {
			size += len(logs[n].Data)
			n++
		}
		if err := w.LogStore.StoreLogs(logs[:n]); err != nil {
			return err
		}
		logs = logs[n:]
	}
	return nil
}

// IsMonotonic passes on raft-wal's promise (see monotonic).
func (w walAppends) IsMonotonic() bool { return monotonic(w.LogStore) }
