package process

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

func programAttr(cfg shimConfig) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Setpgid:   true,            // own group: signals and the final kill reach its children
		Pdeathsig: syscall.SIGKILL, // if the shim dies, so does the program
	}
	if cfg.UID != nil {
		a.Credential = &syscall.Credential{Uid: *cfg.UID, Gid: *cfg.GID, Groups: cfg.Groups}
	}
	return a
}

// isShim reports whether pid is a live process running our shim for dir:
// its command line holds "process-shim" and "--dir dir". A zombie has an
// empty command line and is not live.
func isShim(pid int, dir string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
	shim, dirOK := false, false
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == ShimCommandName {
			shim = true
		}
		if (a == "--dir" && i+1 < len(args) && args[i+1] == dir) || a == "--dir="+dir {
			dirOK = true
		}
	}
	return shim && dirOK
}

// procStat returns the state letter and the session ID of pid.
func procStat(pid int) (state byte, sid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp session ...; comm may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 4 {
		return 0, 0, false
	}
	sid, err = strconv.Atoi(f[3])
	if err != nil || len(f[0]) == 0 {
		return 0, 0, false
	}
	return f[0][0], sid, true
}

// inSession reports whether pid is alive (not a zombie) in session sid,
// i.e. still the program the shim sid started.
func inSession(pid, sid int) bool {
	st, s, ok := procStat(pid)
	return ok && st != 'Z' && s == sid
}

// mountTmpfs mounts a tmpfs at p when the node runs as root; otherwise p
// stays a plain directory (see doc.go).
func mountTmpfs(p string, size int64, mode os.FileMode) error {
	if os.Geteuid() != 0 {
		return nil
	}
	opts := "mode=" + strconv.FormatUint(uint64(mode&0o7777), 8)
	if size > 0 {
		opts += ",size=" + strconv.FormatInt(size, 10)
	}
	return syscall.Mount("tmpfs", p, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts)
}

func unmountTmpfs(p string) { _ = syscall.Unmount(p, syscall.MNT_DETACH) }
