package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSampleShowsSecretsWithoutTheirValueAndConfigsWithTheirText(t *testing.T) {
	secrets, configs := t.TempDir(), t.TempDir()
	t.Setenv(envSecretsDir, secrets)
	t.Setenv(envConfigsDir, configs)
	if err := os.WriteFile(filepath.Join(secrets, "token"), []byte("hunter2"), 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(configs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(configs, "etc", "motd"), []byte("line one\nline two\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	got := secretLine("token")
	if strings.Contains(got, "hunter2") || !strings.HasPrefix(got, "secret token: received, 7 bytes, sha256 ") {
		t.Errorf("secretLine = %q", got)
	}
	if got := secretLine("missing"); !strings.HasPrefix(got, "secret missing: not received") {
		t.Errorf("secretLine of a missing secret = %q", got)
	}
	if got, want := configLine("/etc/motd"), "config /etc/motd: line one\n    line two"; got != want {
		t.Errorf("configLine = %q, want %q", got, want)
	}
}

func TestSampleListenAddr(t *testing.T) {
	for _, k := range []string{"FLOTILLA_ADDR_80", "FLOTILLA_ADDR_8080", "FLOTILLA_IP"} {
		t.Setenv(k, "")
	}
	if got := sampleListenAddr("", 80, 18080, 2); got != ":80" {
		t.Errorf("in a container: %q", got)
	}
	if got := sampleListenAddr("", 0, 18080, 2); got != "127.0.0.1:18082" {
		t.Errorf("by hand: %q", got)
	}
	t.Setenv("FLOTILLA_IP", "10.1.2.3")
	if got := sampleListenAddr("", 8080, 18080, 2); got != "10.1.2.3:8080" {
		t.Errorf("on a network: %q", got)
	}
	t.Setenv("FLOTILLA_ADDR_8080", "127.0.0.9:31000")
	if got := sampleListenAddr("", 8080, 18080, 2); got != "127.0.0.9:31000" {
		t.Errorf("published: %q", got)
	}
	if got := sampleListenAddr("0.0.0.0:1", 8080, 18080, 2); got != "0.0.0.0:1" {
		t.Errorf("--addr: %q", got)
	}
}
