//go:build linux

package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/flotilla-org/flotilla/agent/driver/process"
)

// shmDir is where memory-backed files go when it is a tmpfs.
const shmDir = "/dev/shm"

// filesBase returns the node's memory-backed directory for task files,
// making it (and, for a root daemon without a tmpfs /dev/shm, mounting a
// tmpfs) when create is set; "" when it does not exist and create is not.
func (e *Executor) filesBase(create bool) (string, error) {
	e.filesMu.Lock()
	defer e.filesMu.Unlock()
	if e.filesDir != "" {
		return e.filesDir, nil
	}
	candidates := []string{}
	if isTmpfs(shmDir) {
		candidates = append(candidates, filepath.Join(shmDir, "flotilla", e.NodeID))
	}
	var mountAt string
	if e.DBPath != "" {
		mountAt = filepath.Join(filepath.Dir(e.DBPath), "taskfiles")
		candidates = append(candidates, mountAt)
	}
	for _, dir := range candidates {
		if _, err := os.Stat(dir); err == nil && isTmpfs(dir) {
			e.filesDir = dir
			return dir, nil
		}
	}
	if !create {
		return "", nil
	}
	switch {
	case isTmpfs(shmDir):
		dir := candidates[0]
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return "", err
		}
		if err := os.Chmod(dir, 0o711); err != nil {
			return "", err
		}
		e.filesDir = dir
		return dir, nil
	case mountAt != "" && os.Geteuid() == 0:
		if err := os.MkdirAll(mountAt, 0o711); err != nil {
			return "", err
		}
		if err := unix.Mount("tmpfs", mountAt, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0711,size=64m"); err != nil {
			return "", fmt.Errorf("mount a tmpfs at %s for secret and config files: %w", mountAt, err)
		}
		e.filesDir = mountAt
		return mountAt, nil
	}
	return "", errors.New("secret and config files are kept in memory only, and this node has no memory-backed directory: /dev/shm is not a tmpfs and the daemon is not root (it would mount one); give the node a tmpfs /dev/shm or run the daemon as root")
}

// dropEmptyFilesBase removes the node's directory in /dev/shm if no task
// has files in it, when the executor has stopped: a node that ran tasks
// with secrets leaves nothing there (a mounted tmpfs stays: it is in the
// data dir).
func (e *Executor) dropEmptyFilesBase() {
	e.filesMu.Lock()
	defer e.filesMu.Unlock()
	if e.filesDir != "" && filepath.Dir(e.filesDir) == filepath.Join(shmDir, "flotilla") && os.Remove(e.filesDir) == nil {
		e.filesDir = ""
	}
}

// removeFormerTaskFiles removes what tasks of the node's former
// identities (it left and joined again) left in /dev/shm.
func (e *Executor) removeFormerTaskFiles() {
	for _, id := range e.FormerNodeIDs {
		if id != "" && id != e.NodeID {
			_ = os.RemoveAll(filepath.Join(shmDir, "flotilla", id))
		}
	}
}

func isTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && int64(st.Type) == unix.TMPFS_MAGIC
}

func processOwner(user string) (fileOwner, error) {
	uid, gid, err := process.Owner(user)
	return fileOwner{uid: uid, gid: gid}, err
}
