package raftnode_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flotilla-org/flotilla/manager/fsm"
	"github.com/flotilla-org/flotilla/manager/raftnode"
	"github.com/flotilla-org/flotilla/manager/state"
)

// The leader times each write from proposal to applied, and each entry
// from proposal to commit, and counts the entries it proposed; a
// snapshot's writing is timed.
func TestMetricsTimeWrites(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	m := h.open(&member{id: "m1", dir: filepath.Join(t.TempDir(), "m1"), metrics: raftnode.NewMetrics(reg)}, true)
	waitLeader(t, m)
	if err := m.node.Propose(context.Background(), createNode("n1")); err != nil {
		t.Fatal(err)
	}
	if err := m.node.ProposeAll(context.Background(), []state.Batch{createNode("n2"), createNode("n3")}); err != nil {
		t.Fatal(err)
	}
	if err := m.node.Raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	// Bootstrap's configuration, the leader's no-op, the three writes.
	if n := m.node.LogEntries(); n < 3 {
		t.Errorf("LogEntries = %d after three writes", n)
	}
	if n := testutil.CollectAndCount(reg, "flotilla_raft_apply_seconds"); n != 1 {
		t.Fatalf("flotilla_raft_apply_seconds: %d series, want 1", n)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		switch f.GetName() {
		case "flotilla_raft_apply_seconds":
			if c := f.GetMetric()[0].GetHistogram().GetSampleCount(); c != 2 {
				t.Errorf("flotilla_raft_apply_seconds counts %d writes, want 2 (one per Propose/ProposeAll)", c)
			}
		case "flotilla_raft_commit_seconds":
			h := f.GetMetric()[0].GetHistogram()
			if c := h.GetSampleCount(); c != 3 {
				t.Errorf("flotilla_raft_commit_seconds counts %d entries, want 3 (one per entry)", c)
			}
			if h.GetSampleSum() <= 0 {
				t.Errorf("flotilla_raft_commit_seconds sums to %v: commits took no time", h.GetSampleSum())
			}
		case "flotilla_raft_snapshot_write_seconds":
			if c := f.GetMetric()[0].GetHistogram().GetSampleCount(); c != 1 {
				t.Errorf("flotilla_raft_snapshot_write_seconds counts %d snapshots, want the one asked for", c)
			}
		case "flotilla_raft_proposed_entries_total":
			if v := f.GetMetric()[0].GetCounter().GetValue(); v != 3 {
				t.Errorf("flotilla_raft_proposed_entries_total = %v, want 3", v)
			}
		case "flotilla_raft_proposed_bytes_total":
			// The three entries as encoded; each one's time takes 20 to
			// 30 bytes (RFC 3339 drops trailing zeros of nanoseconds).
			least := 0
			for _, id := range []string{"n1", "n2", "n3"} {
				b := createNode(id)
				b.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				data, err := fsm.EncodeBatch(b)
				if err != nil {
					t.Fatal(err)
				}
				least += len(data)
			}
			if v := int(f.GetMetric()[0].GetCounter().GetValue()); v < least || v > least+3*10 {
				t.Errorf("flotilla_raft_proposed_bytes_total = %d, want the three entries' %d to %d bytes", v, least, least+30)
			}
		}
	}
}
