package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// flotillaBin is the binary TestMain builds; empty under -short.
var flotillaBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	dir, err := os.MkdirTemp("", "flotilla-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := 1
	if bin, err := buildBinary(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	} else {
		flotillaBin = bin
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildBinary builds ./cmd/flotilla of this module into dir.
func buildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "flotilla")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/flotilla-org/flotilla/cmd/flotilla")
	cmd.Dir = ".." // the module root; go test runs in the package directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/flotilla: %v\n%s", err, out)
	}
	return bin, nil
}

// requireE2E skips the test under -short.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e tier skipped in -short mode")
	}
	if flotillaBin == "" {
		t.Fatal("the flotilla binary was not built")
	}
}
