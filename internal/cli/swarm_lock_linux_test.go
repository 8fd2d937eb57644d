package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the master and the slave (terminal) side of a new
// pseudo-terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close(); master.Close() })
	return master, slave
}

func echoOn(t *testing.T, f *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// On a terminal the key is asked for and not echoed, and the terminal's
// echo comes back afterwards.
func TestReadUnlockKeyTerminalNoEcho(t *testing.T) {
	master, slave := openPTY(t)
	if !echoOn(t, slave) {
		t.Fatal("a new terminal should echo")
	}
	var prompt bytes.Buffer
	type result struct {
		key string
		err error
	}
	done := make(chan result, 1)
	go func() {
		k, err := readUnlockKey(slave, &prompt)
		done <- result{k, err}
	}()
	// Type only once echo is off, as a user would after the prompt.
	deadline := time.Now().Add(5 * time.Second)
	for echoOn(t, slave) {
		if time.Now().After(deadline) {
			t.Fatal("echo was never turned off")
		}
		time.Sleep(5 * time.Millisecond) // polling the terminal's mode
	}
	if _, err := master.Write([]byte("SWMKEY-1-typedsecret\n")); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("readUnlockKey did not return")
	}
	if r.err != nil || r.key != "SWMKEY-1-typedsecret" {
		t.Fatalf("key %q, %v", r.key, r.err)
	}
	if !strings.Contains(prompt.String(), "Enter unlock key: ") {
		t.Errorf("prompt %q", prompt.String())
	}
	if !echoOn(t, slave) {
		t.Error("the terminal's echo was not restored")
	}
	// Whatever the terminal showed must not include the key.
	_ = master.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 256)
	n, err := master.Read(buf)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
	if strings.Contains(string(buf[:n]), "typedsecret") {
		t.Errorf("the key was echoed: %q", buf[:n])
	}
}

func TestReadUnlockKeyPipe(t *testing.T) {
	var prompt bytes.Buffer
	k, err := readUnlockKey(strings.NewReader("  SWMKEY-1-piped \n"), &prompt)
	if err != nil || k != "SWMKEY-1-piped" || prompt.Len() != 0 {
		t.Errorf("key %q, %v, prompt %q", k, err, prompt.String())
	}
	if _, err := readUnlockKey(strings.NewReader(""), &prompt); err == nil || !strings.Contains(err.Error(), "no unlock key given") {
		t.Errorf("empty stdin: %v", err)
	}
}
