package raftnode_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/manager/raftnode"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// A Raft state seeded from a state snapshot opens as a one-voter cluster
// holding that state: it elects itself, new entries follow the snapshot's
// index, and its term is above the snapshot's. A directory that already
// holds Raft state is never overwritten.
func TestSeedFromSnapshot(t *testing.T) {
	h := newHarness(t)
	src := h.newMember("src", true)
	waitLeader(t, src)
	for _, id := range []string{"a", "b"} {
		if err := src.node.Propose(ctx(t), createNode(id)); err != nil {
			t.Fatal(err)
		}
	}
	var snap bytes.Buffer
	if err := src.store.WriteSnapshot(&snap); err != nil {
		t.Fatal(err)
	}
	index := src.store.Index()
	const term = 7

	// Reserve a port for the restored member's advertise address.
	mux, err := clusterport.Listen("127.0.0.1:0", h.server, h.log)
	if err != nil {
		t.Fatal(err)
	}
	mux.Close()
	// Seeded sealed with a DEK, as a restore does.
	dek, err := encryption.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	m := &member{id: "restored", dir: filepath.Join(t.TempDir(), "raft"), mux: mux, dek: &dek}
	if err := raftnode.SeedFromSnapshot(m.dir, m.dek, m.id, mux.Addr().String(), index, term, snap.Bytes()); err != nil {
		t.Fatal(err)
	}
	h.open(m, false)
	waitLeader(t, m)
	if got := m.store.Index(); got != index {
		t.Errorf("restored store is at index %d, want %d", got, index)
	}
	for _, id := range []string{"a", "b"} {
		if m.store.Node(id) == nil {
			t.Errorf("node %s missing after the restore", id)
		}
	}
	if err := m.node.Propose(ctx(t), createNode("c")); err != nil {
		t.Fatal(err)
	}
	if v := m.store.Node("c").Version.Index; v <= index {
		t.Errorf("a write after the restore got version %d, not above the snapshot's %d", v, index)
	}
	if tm := m.node.Term(); tm <= term {
		t.Errorf("the restored node leads in term %d, not above the snapshot's %d", tm, term)
	}
	servers, err := m.node.Servers()
	if err != nil || len(servers) != 1 || string(servers[0].ID) != "restored" {
		t.Errorf("raft configuration %v (%v), want only the restored node", servers, err)
	}

	// Seeding over existing state is refused and leaves it alone.
	other := filepath.Join(t.TempDir(), "raft")
	if err := raftnode.SeedFromSnapshot(other, nil, "x", "127.0.0.1:1", index, term, snap.Bytes()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(filepath.Join(other, "snapshots"))
	err = raftnode.SeedFromSnapshot(other, nil, "y", "127.0.0.1:1", index+5, term, snap.Bytes())
	if err == nil || !strings.Contains(err.Error(), "already holds raft state") {
		t.Fatalf("seeding over existing state: %v", err)
	}
	after, _ := os.ReadDir(filepath.Join(other, "snapshots"))
	if len(before) != 1 || len(after) != 1 || before[0].Name() != after[0].Name() {
		t.Errorf("snapshots changed: %v -> %v", before, after)
	}
}
