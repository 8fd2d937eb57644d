package discovery

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
)

// file lists managers one per line; it is read again on every call, so
// whoever maintains it (a config manager, a script) can change it while
// nodes run. '#' starts a comment.
type file string

func newFile(path string) (file, error) {
	if path == "" {
		return "", fmt.Errorf("discovery spec file: needs a path, e.g. file:/etc/flotilla/managers")
	}
	return file(path), nil
}

func (f file) Managers(context.Context) ([]string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, a := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			s, err := newStatic(a)
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", f, n, err)
			}
			out = append(out, s.(static)...)
		}
	}
	return out, nil
}

func (f file) String() string { return "file " + string(f) }
