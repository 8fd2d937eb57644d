//go:build unix && !linux

package process

import (
	"os"
	"syscall"
)

func programAttr(cfg shimConfig) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if cfg.UID != nil {
		a.Credential = &syscall.Credential{Uid: *cfg.UID, Gid: *cfg.GID, Groups: cfg.Groups}
	}
	return a
}

// Without /proc, a PID is taken to be ours while it is alive.
func isShim(pid int, dir string) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

func inSession(pid, sid int) bool {
	got, err := syscall.Getsid(pid)
	return err == nil && got == sid
}

// Tmpfs mounts are Linux's here: elsewhere a tmpfs is a plain directory.
func mountTmpfs(p string, size int64, mode os.FileMode) error { return nil }

func unmountTmpfs(p string) {}
