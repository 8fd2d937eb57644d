package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// DaemonBinary is the daemon-only program (cmd/flotillad).
const DaemonBinary = "flotillad"

// Delegate replaces this process with DaemonBinary found next to the
// running executable, with the same arguments (args[0] is "daemon"): the
// process keeps its ID, so whatever started `flotilla daemon` (systemd,
// the sandbox) sees no difference, and the daemon does not carry the
// client's packages. It returns only when there is no such program (the
// daemon then runs in this process) or, with an error, when it could not
// be started.
func Delegate(args []string, stderr *os.File) error {
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	if filepath.Base(self) == DaemonBinary {
		return nil
	}
	bin := filepath.Join(filepath.Dir(self), DaemonBinary)
	st, err := os.Stat(bin)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, "note: %s not found next to %s: the daemon runs in this process, which also carries the client (about 5 MiB more resident); build both with `go build -o bin/ ./cmd/...`\n", DaemonBinary, self)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot start %s: %w", bin, err)
	}
	if st.IsDir() {
		return fmt.Errorf("cannot start %s: it is a directory (remove it to run the daemon inside flotilla)", bin)
	}
	if err := syscall.Exec(bin, append([]string{bin}, args...), os.Environ()); err != nil {
		return fmt.Errorf("cannot start %s: %w (remove it to run the daemon inside flotilla)", bin, err)
	}
	return nil
}
