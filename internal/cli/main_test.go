package cli_test

import (
	"os"
	"testing"

	"github.com/flotilla-org/flotilla/internal/sandbox/sandboxtest"
)

// TestMain lets this test binary serve as the sandbox tests' fake daemons.
func TestMain(m *testing.M) {
	sandboxtest.RunFakeDaemon()
	os.Exit(m.Run())
}
