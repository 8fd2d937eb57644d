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

// buildBinary builds the module's commands into dir (flotilla, and
// flotillad beside it, which `flotilla daemon` hands over to) and returns
// flotilla's path.
func buildBinary(dir string) (string, error) {
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = ".." // the module root; go test runs in the package directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
	}
	return filepath.Join(dir, "flotilla"), nil
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
