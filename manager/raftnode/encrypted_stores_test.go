package raftnode

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"

	"github.com/flotilla-org/flotilla/security/encryption"
)

func newDEK(t testing.TB) *encryption.Key {
	t.Helper()
	k, err := encryption.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return &k
}

func openWAL(t testing.TB, dir string) *wal.WAL {
	t.Helper()
	w, err := wal.Open(dir, wal.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func entry(i uint64, data string) *raft.Log {
	return &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte(data)}
}

func TestEncryptedLog(t *testing.T) {
	w := openWAL(t, t.TempDir())
	dek := newDEK(t)
	logs, _ := encrypt(dek, w, nil)

	// An entry from before encryption is read as it is.
	if err := w.StoreLog(entry(1, "\x01legacy plain entry")); err != nil {
		t.Fatal(err)
	}
	in := []*raft.Log{entry(2, "\x01service secret-web"), entry(3, "\x01env PASSWORD=hunter2"), {Index: 4, Term: 1, Type: raft.LogNoop}}
	if err := logs.StoreLogs(in); err != nil {
		t.Fatal(err)
	}
	if string(in[0].Data) != "\x01service secret-web" {
		t.Fatal("StoreLogs changed the caller's entry, which raft goes on applying")
	}
	for i, want := range map[uint64]string{1: "\x01legacy plain entry", 2: "\x01service secret-web", 3: "\x01env PASSWORD=hunter2", 4: ""} {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil || string(l.Data) != want {
			t.Errorf("entry %d = %q, %v; want %q", i, l.Data, err, want)
		}
	}
	var raw raft.Log
	if err := w.GetLog(2, &raw); err != nil {
		t.Fatal(err)
	}
	if !encryption.IsSealed(raw.Data) || bytes.Contains(raw.Data, []byte("secret-web")) {
		t.Fatalf("stored entry is not sealed: %q", raw.Data)
	}
	if !logs.(raft.MonotonicLogStore).IsMonotonic() {
		t.Error("the wrapper hides raft-wal's monotonic promise")
	}

	// The wrong DEK is refused, not misread.
	wrong, _ := encrypt(newDEK(t), w, nil)
	var l raft.Log
	if err := wrong.GetLog(2, &l); !errors.Is(err, encryption.ErrDecrypt) {
		t.Errorf("wrong DEK: %v", err)
	}
	// A tampered entry, and a sealed entry moved to another index, fail.
	bad := raw
	bad.Index = 5
	bad.Data = bytes.Clone(raw.Data)
	bad.Data[len(bad.Data)-3] ^= 1
	moved := raw
	moved.Index = 6
	if err := w.StoreLogs([]*raft.Log{&bad, &moved}); err != nil {
		t.Fatal(err)
	}
	for _, i := range []uint64{5, 6} {
		if err := logs.GetLog(i, &l); !errors.Is(err, encryption.ErrDecrypt) {
			t.Errorf("entry %d: %v, want a decryption error", i, err)
		}
	}
}

func TestEncryptedSnapshots(t *testing.T) {
	dir := t.TempDir()
	files, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	dek := newDEK(t)
	_, snaps := encrypt(dek, nil, files)
	write := func(store raft.SnapshotStore, index uint64, data string) string {
		sink, err := store.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(sink, data); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		// raft's RecoverCluster closes twice; the second is a no-op.
		if err := sink.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		return sink.ID()
	}
	read := func(store raft.SnapshotStore, id string) (*raft.SnapshotMeta, string, error) {
		meta, rc, err := store.Open(id)
		if err != nil {
			return nil, "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return meta, string(b), err
	}
	legacy := write(files, 10, `{"plain":"legacy-snapshot"}`)
	// Bigger than the file sink's write buffer, so a write after close
	// would fail rather than vanish into the buffer.
	secret := `{"service":"secret-web","env":"PASSWORD=hunter2","pad":"` + strings.Repeat("x", 1<<17) + `"}`
	sealed := write(snaps, 20, secret)

	meta, got, err := read(snaps, sealed)
	if err != nil || got != secret {
		t.Fatalf("sealed snapshot = %q, %v", got, err)
	}
	if meta.Size != int64(len(secret)) {
		t.Errorf("meta.Size = %d, want the plaintext's %d (raft sends that many bytes to followers)", meta.Size, len(secret))
	}
	if _, got, err := read(snaps, legacy); err != nil || got != `{"plain":"legacy-snapshot"}` {
		t.Errorf("legacy snapshot = %q, %v", got, err)
	}
	if _, raw, err := read(files, sealed); err != nil || !encryption.IsSealed([]byte(raw)) || bytes.Contains([]byte(raw), []byte("secret-web")) {
		t.Errorf("snapshot on disk is not sealed: %q, %v", raw, err)
	}
	_, wrong := encrypt(newDEK(t), nil, files)
	if _, _, err := read(wrong, sealed); !errors.Is(err, encryption.ErrDecrypt) {
		t.Errorf("wrong DEK: %v", err)
	}
	// Damage on disk is refused (by raft's CRC or by the AEAD).
	path := filepath.Join(dir, "snapshots", sealed, "state.bin")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-5] ^= 1
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := read(snaps, sealed); err == nil {
		t.Error("a damaged snapshot opened")
	}
}
