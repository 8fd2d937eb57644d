package cli_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/internal/backupfile"
	"github.com/flotilla-org/flotilla/internal/engineapi"
)

func sampleBackup(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := backupfile.Header{ClusterID: "cluster1", Index: 9, Term: 2, Created: time.Now().UTC(),
		Managers: []backupfile.Peer{{NodeID: "m1", Addr: "10.0.0.1:2377"}}}
	if err := backupfile.Encode(&buf, h, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSwarmBackupWritesOnlyWholeBackups(t *testing.T) {
	f := newFakeAPI(t)
	data := sampleBackup(t)
	file := filepath.Join(t.TempDir(), "swarm.backup")

	// A cut answer (the leader died midway) leaves no file.
	f.handle("GET "+engineapi.PathSwarmBackup, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(data[:len(data)-10]) })
	r := run(t, f.host, "swarm", "backup", "-o", file)
	if r.err == nil || !strings.Contains(r.stderr, "not a whole backup") {
		t.Fatalf("a truncated answer: %v %q", r.err, r.stderr)
	}
	// A daemon error is shown as such.
	f.fail("GET "+engineapi.PathSwarmBackup, http.StatusServiceUnavailable, "the swarm has no leader")
	r = run(t, f.host, "swarm", "backup", "-o", file)
	if r.err == nil || !strings.Contains(r.stderr, "Error response from daemon: the swarm has no leader") {
		t.Fatalf("a daemon error: %v %q", r.err, r.stderr)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a failed backup left a file")
	}

	f.handle("GET "+engineapi.PathSwarmBackup, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(data) })
	r = mustRun(t, f.host, "swarm", "backup", "-o", file)
	if !strings.Contains(r.stdout, "cluster1") || !strings.Contains(r.stdout, "keep it as secret") {
		t.Errorf("backup printed %q", r.stdout)
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("written file differs from the daemon's answer (%v)", err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	r = run(t, f.host, "swarm", "backup", "-o", file)
	if r.err == nil || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("overwriting without --force: %v %q", r.err, r.stderr)
	}
	mustRun(t, f.host, "swarm", "backup", "--force", "-o", file)
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestSwarmRestoreChecksTheFileFirst(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("POST "+engineapi.PathSwarmRestore, http.StatusOK, "newnode")
	dir := t.TempDir()
	data := sampleBackup(t)
	good := filepath.Join(dir, "good.backup")
	bad := filepath.Join(dir, "bad.backup")
	if err := os.WriteFile(good, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, data[:len(data)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"swarm", "restore", "-i", bad},
		{"swarm", "restore"},
		{"swarm", "init", "--from-backup", good},
	} {
		r := run(t, f.host, args...)
		if r.err == nil {
			t.Errorf("%v succeeded", args)
		}
	}
	if n := len(f.only(http.MethodPost, engineapi.PathSwarmRestore)); n != 0 {
		t.Fatalf("refused restores reached the daemon %d times", n)
	}

	r := mustRun(t, f.host, "swarm", "init", "--force-new-cluster", "--from-backup", good, "--listen-addr", "127.0.0.1:4000")
	if !strings.Contains(r.stdout, "(newnode) is now its only manager") || !strings.Contains(r.stdout, "10.0.0.1:2377") {
		t.Errorf("restore printed %q", r.stdout)
	}
	reqs := f.only(http.MethodPost, engineapi.PathSwarmRestore)
	if len(reqs) != 1 || !bytes.Equal(reqs[0].Body, data) || reqs[0].Query.Get("listenAddr") != "127.0.0.1:4000" {
		t.Fatalf("restore requests: %+v", reqs)
	}
}
