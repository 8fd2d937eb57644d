package raftnode_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flotilla-org/flotilla/manager/raftnode"
	"github.com/flotilla-org/flotilla/security/encryption"
)

// dirContains reports which files under dir hold s.
func dirContains(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// A data dir written without encryption keeps working once a DEK is set:
// old entries are read plainly, new entries and snapshots are sealed, a
// restart reads both back, and the wrong DEK does not open the state.
func TestRaftWithDEK(t *testing.T) {
	h := newHarness(t)
	a := h.newMember("a", true)
	waitLeader(t, a)
	if err := a.node.Propose(ctx(t), createNode("legacy-plain-node")); err != nil {
		t.Fatal(err)
	}
	a.stop()

	dek, err := encryption.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	a.dek = &dek
	h.open(a, true)
	waitLeader(t, a)
	waitFor(t, 5*time.Second, func() error {
		if a.store.Node("legacy-plain-node") == nil {
			return fmt.Errorf("the plain entry was not replayed")
		}
		return nil
	})
	if err := a.node.Propose(ctx(t), createNode("sealed-secret-node")); err != nil {
		t.Fatal(err)
	}
	if err := a.node.Raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := a.node.Propose(ctx(t), createNode("after-snapshot-secret")); err != nil {
		t.Fatal(err)
	}
	a.stop()
	for _, s := range []string{"sealed-secret-node", "after-snapshot-secret"} {
		if hits := dirContains(t, a.dir, s); len(hits) > 0 {
			t.Errorf("%q is readable at rest in %v", s, hits)
		}
	}
	if hits := dirContains(t, a.dir, "legacy-plain-node"); len(hits) == 0 {
		t.Error("control: the entry written without a DEK should still be plain on disk")
	}

	h.open(a, true)
	waitLeader(t, a)
	waitFor(t, 5*time.Second, func() error {
		for _, id := range []string{"legacy-plain-node", "sealed-secret-node", "after-snapshot-secret"} {
			if a.store.Node(id) == nil {
				return fmt.Errorf("node %s missing after restart", id)
			}
		}
		return nil
	})
	a.stop()

	wrong, _ := encryption.NewKey()
	_, err = raftnode.Open(raftnode.Config{NodeID: "a", Advertise: a.addr(), Dir: a.dir, DEK: &wrong, Store: a.store, Timing: fast, Log: h.log,
		Listener: a.mux.Sub("unused")})
	if err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Fatalf("open with the wrong DEK: %v, want a snapshot error", err)
	}
	t.Logf("wrong DEK: %v", err)
}

// Force-new-cluster replays the sealed log with the DEK.
func TestForceNewClusterWithDEK(t *testing.T) {
	h := newHarness(t)
	dek, _ := encryption.NewKey()
	a := &member{id: "a", dir: filepath.Join(t.TempDir(), "a"), dek: &dek}
	h.open(a, true)
	waitLeader(t, a)
	if err := a.node.Propose(ctx(t), createNode("kept-node")); err != nil {
		t.Fatal(err)
	}
	a.stop()
	if err := raftnode.ForceNewCluster(a.dir, &dek, "a", a.addr()); err != nil {
		t.Fatal(err)
	}
	h.open(a, false)
	waitLeader(t, a)
	waitFor(t, 5*time.Second, func() error {
		if a.store.Node("kept-node") == nil {
			return fmt.Errorf("node lost by the recovery")
		}
		return nil
	})
	if servers, _ := a.node.Servers(); len(servers) != 1 || servers[0].Suffrage != raft.Voter {
		t.Errorf("servers after recovery: %+v", servers)
	}
}
