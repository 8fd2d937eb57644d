package cli

import (
	"bufio"
	"os"

	"golang.org/x/sys/unix"
)

// readNoEcho reads a line with the terminal's echo off, so the key does
// not show on screen.
func readNoEcho(f *os.File) ([]byte, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old) //nolint:errcheck // best effort restore
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if len(line) > 0 {
		err = nil
	}
	return line, err
}
