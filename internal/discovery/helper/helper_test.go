package helper

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/internal/discovery"
)

// fakeHelper installs a shell script as the helper.
func fakeHelper(t *testing.T, script string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), Binary)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPath, p)
}

func TestLookupsGoThroughTheHelper(t *testing.T) {
	Register()
	// The helper gets the spec in a stable order and its lines are the
	// managers.
	fakeHelper(t, `[ "$1" = "provider=aws port=4000 tag_key=role tag_value=mgr" ] || { echo "got: $*" >&2; exit 1; }
echo 10.0.0.1:4000
echo 10.0.0.2:4000`)
	p, err := discovery.Parse("provider=aws tag_value=mgr tag_key=role port=4000")
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Managers(context.Background())
	if err != nil || strings.Join(got, ",") != "10.0.0.1:4000,10.0.0.2:4000" {
		t.Fatalf("Managers: %v, %v", got, err)
	}

	// A spec the helper would refuse is refused when it is given.
	if _, err := discovery.Parse("provider=aws tag_value=x port=http"); err == nil || !strings.Contains(err.Error(), "not a port number") {
		t.Fatalf("bad port: %v", err)
	}

	// The helper's error reaches the user as it said it.
	fakeHelper(t, `echo "provider=aws: no credentials found" >&2; exit 1`)
	if _, err := p.Managers(context.Background()); err == nil || !strings.Contains(err.Error(), "no credentials found") {
		t.Fatalf("a failing helper: %v", err)
	}
	// An answer that is not host:port is refused.
	fakeHelper(t, `echo not-an-address`)
	if _, err := p.Managers(context.Background()); err == nil || !strings.Contains(err.Error(), "not host:port") {
		t.Fatalf("a garbled answer: %v", err)
	}
	// A lookup whose time is up ends, naming the provider.
	fakeHelper(t, `exec sleep 30`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Managers(ctx); err == nil || !strings.Contains(err.Error(), "provider=aws") {
		t.Fatalf("a cancelled lookup: %v", err)
	}
	// No helper: the error says how to get it.
	t.Setenv(EnvPath, "")
	t.Setenv("PATH", t.TempDir())
	if _, err := p.Managers(context.Background()); err == nil || !strings.Contains(err.Error(), "go build -o bin/ ./cmd/...") {
		t.Fatalf("no helper: %v", err)
	}
}
