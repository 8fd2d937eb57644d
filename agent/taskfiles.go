package agent

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// Secrets and configs reach a task as files the agent writes, from the
// data its assignment carries, in memory-backed storage only (a tmpfs),
// never on the node's disk and never in the task record:
//
//	BASE/TASK/secrets/TARGET   BASE/TASK/configs/TARGET
//
// BASE is /dev/shm/flotilla/NODE when /dev/shm is a tmpfs; otherwise,
// for a root daemon, a tmpfs it mounts at DATA/taskfiles; otherwise a
// task that uses one is refused. The docker driver bind-mounts each file
// read-only into the container (secrets under /run/secrets, configs at
// their target, /NAME by default), with the reference's uid, gid and
// mode. The process driver gives the task FLOTILLA_SECRETS_DIR and
// FLOTILLA_CONFIGS_DIR; its files are 0400 and, with their directories,
// owned by the task's user. A task's directory goes when the managers
// drop the task.

// Environment of a process task with secrets or configs.
const (
	EnvSecretsDir = "FLOTILLA_SECRETS_DIR"
	EnvConfigsDir = "FLOTILLA_CONFIGS_DIR"
)

// fileRef is one reference of a task's spec, of either kind.
type fileRef struct {
	kind, id, name string
	file           swarm.SecretReferenceFileTarget // same shape for configs
}

func refsOf(cs *swarm.ContainerSpec) []fileRef {
	if cs == nil {
		return nil
	}
	var out []fileRef
	for _, r := range cs.Secrets {
		if r != nil && r.File != nil {
			out = append(out, fileRef{nodeapi.FileSecret, r.SecretID, r.SecretName, *r.File})
		}
	}
	for _, r := range cs.Configs {
		if r != nil && r.File != nil {
			f := r.File
			out = append(out, fileRef{nodeapi.FileConfig, r.ConfigID, r.ConfigName,
				swarm.SecretReferenceFileTarget{Name: f.Name, UID: f.UID, GID: f.GID, Mode: f.Mode}})
		}
	}
	return out
}

// writeTaskFiles makes a task's files and returns what its driver needs:
// the files to mount (docker) and the environment to add (process).
func (e *Executor) writeTaskFiles(t swarm.Task, driverName string, files []nodeapi.TaskFile) ([]driver.File, []string, error) {
	refs := refsOf(t.Spec.ContainerSpec)
	if len(refs) == 0 {
		return nil, nil, nil
	}
	data := map[string][]byte{}
	for _, f := range files {
		data[f.Kind+"/"+f.ID] = f.Data
	}
	for _, r := range refs {
		if _, ok := data[r.kind+"/"+r.id]; !ok {
			return nil, nil, errdefs.Invalid("%s %s (%s) was not sent with the task: it is no longer in the swarm", r.kind, r.name, r.id)
		}
	}
	base, err := e.filesBase(true)
	if err != nil {
		return nil, nil, errdefs.Invalid("task %s uses secrets or configs: %v", t.ID, err)
	}
	process := driverName == "process"
	owner := fileOwner{uid: -1, gid: -1}
	if process {
		if owner, err = processOwner(t.Spec.ContainerSpec.User); err != nil {
			return nil, nil, errdefs.Invalid("task %s: user %q: %v", t.ID, t.Spec.ContainerSpec.User, err)
		}
	}
	taskDir := filepath.Join(base, t.ID)
	dirs := map[string]string{nodeapi.FileSecret: filepath.Join(taskDir, "secrets"), nodeapi.FileConfig: filepath.Join(taskDir, "configs")}
	// A start the agent did not finish (it restarted) left a directory.
	if err := os.RemoveAll(taskDir); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(taskDir, 0o711); err != nil {
		return nil, nil, err
	}
	var mounts []driver.File
	env := []string{}
	for _, r := range refs {
		dir := dirs[r.kind]
		rel := path.Clean("/" + r.file.Name) // never out of dir: the managers refuse ".." too
		if r.kind == nodeapi.FileSecret {
			rel = strings.TrimPrefix(rel, "/run/secrets")
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		mode, own := r.file.Mode, fileOwner{uid: atoi(r.file.UID), gid: atoi(r.file.GID)}
		if process {
			mode, own = 0o400, owner
		}
		if err := writeMemFile(dir, p, data[r.kind+"/"+r.id], mode, own, process); err != nil {
			_ = os.RemoveAll(taskDir)
			return nil, nil, fmt.Errorf("%s %s: %v", r.kind, r.name, err)
		}
		target := r.file.Name
		switch {
		case r.kind == nodeapi.FileSecret && !path.IsAbs(target):
			target = "/run/secrets/" + target
		case !path.IsAbs(target):
			target = "/" + target
		}
		mounts = append(mounts, driver.File{Source: p, Target: target})
	}
	if process {
		for kind, env1 := range map[string]string{nodeapi.FileSecret: EnvSecretsDir, nodeapi.FileConfig: EnvConfigsDir} {
			if _, err := os.Stat(dirs[kind]); err == nil {
				env = append(env, env1+"="+dirs[kind])
			}
		}
		return nil, env, nil
	}
	return mounts, nil, nil
}

type fileOwner struct{ uid, gid int }

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// writeMemFile writes one file (and the directories to it, under top,
// 0700) with its owner and mode. For a process task the directories
// belong to its user too, so it can reach its files.
func writeMemFile(top, p string, data []byte, mode os.FileMode, own fileOwner, ownDirs bool) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	if ownDirs {
		for d := filepath.Dir(p); strings.HasPrefix(d, top); d = filepath.Dir(d) {
			if err := os.Lchown(d, own.uid, own.gid); err != nil {
				return err
			}
		}
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Chown(own.uid, own.gid), f.Chmod(mode), f.Close()); err != nil {
		return err
	}
	return nil
}

// removeTaskFiles removes a task's files, if it had any.
func (e *Executor) removeTaskFiles(taskID string) {
	base, err := e.filesBase(false)
	if err != nil || base == "" {
		return
	}
	if err := os.RemoveAll(filepath.Join(base, taskID)); err != nil {
		e.Log.Warn("remove task files", "task", taskID, "err", err)
	}
}

// removeUnknownTaskFiles removes the files of tasks the record does not
// hold (dropped while the agent was down), and those of the node's former
// identities. Caller holds e.mu.
func (e *Executor) removeUnknownTaskFiles() {
	e.removeFormerTaskFiles()
	base, err := e.filesBase(false)
	if err != nil || base == "" {
		return
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, ent := range entries {
		if e.tasks[ent.Name()] == nil {
			_ = os.RemoveAll(filepath.Join(base, ent.Name()))
		}
	}
}
