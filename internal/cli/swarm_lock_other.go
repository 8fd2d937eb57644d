//go:build !linux

package cli

import (
	"bufio"
	"os"
)

// readNoEcho reads a line; elsewhere than Linux the key is echoed.
func readNoEcho(f *os.File) ([]byte, error) {
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if len(line) > 0 {
		err = nil
	}
	return line, err
}
