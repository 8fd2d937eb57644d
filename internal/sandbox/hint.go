package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// RunnableProg is the command to print in the sandbox's hints: prog when
// it runs this very binary from PATH, else the running binary's path —
// relative to the current directory when under it (bin/flotilla), else
// absolute — so the hints can be pasted as they are.
func RunnableProg(prog string) string {
	exe, err := os.Executable()
	if err != nil {
		return prog
	}
	cwd, err := os.Getwd()
	if err != nil {
		return prog
	}
	onPath, _ := exec.LookPath(prog)
	return progHint(prog, exe, cwd, onPath)
}

// progHint decides RunnableProg from the binary's path exe, the current
// directory cwd and what prog resolves to on PATH (onPath, "" if nothing).
func progHint(prog, exe, cwd, onPath string) string {
	if filepath.Base(exe) != prog {
		// Not the flotilla binary (e.g. a test binary): keep the name.
		return prog
	}
	if onPath != "" && sameFile(onPath, exe) {
		return prog
	}
	if rel, err := filepath.Rel(cwd, exe); err == nil && filepath.IsLocal(rel) {
		if !strings.Contains(rel, string(filepath.Separator)) {
			rel = "." + string(filepath.Separator) + rel // ./flotilla, not a PATH lookup
		}
		return rel
	}
	return exe
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
