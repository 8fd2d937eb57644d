package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

func TestProgHint(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "flotilla")
	other := filepath.Join(dir, "elsewhere", "flotilla")
	for _, p := range []string{bin, other} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, exe, cwd, onPath, want string
	}{
		{"under the current directory", bin, dir, "", "bin/flotilla"},
		{"in the current directory", bin, filepath.Join(dir, "bin"), "", "./flotilla"},
		{"outside the current directory", bin, filepath.Join(dir, "elsewhere"), "", bin},
		{"this binary is on PATH", bin, dir, bin, "flotilla"},
		{"another flotilla is on PATH", bin, dir, other, "bin/flotilla"},
		{"not the flotilla binary", filepath.Join(dir, "cli.test"), dir, "", "flotilla"},
	} {
		if got := progHint("flotilla", tc.exe, tc.cwd, tc.onPath); got != tc.want {
			t.Errorf("%s: progHint = %q, want %q", tc.name, got, tc.want)
		}
	}
}
