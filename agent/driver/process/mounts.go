//go:build unix

package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Where a task's own mounts live in its task directory.
const (
	dirAnonymous = "volumes" // TASKDIR/volumes/N: anonymous volume of mount N
	dirTmpfs     = "tmpfs"   // TASKDIR/tmpfs/N: tmpfs of mount N
)

// volumeRecord is VOLUMES/NAME/volume.json, as the engine's local driver
// keeps a volume's options beside its _data.
type volumeRecord struct {
	Name      string
	Labels    map[string]string `json:",omitempty"`
	CreatedAt time.Time
}

// MountEnv is the environment variable that tells a task where the node
// path of its mount at target is: FLOTILLA_MOUNT_ and the target in
// capitals, every run of characters other than letters and digits made
// one '_' (/var/lib/db → FLOTILLA_MOUNT_VAR_LIB_DB).
func MountEnv(target string) string {
	var b strings.Builder
	b.WriteString("FLOTILLA_MOUNT")
	under := false
	for _, r := range strings.ToUpper(target) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			if under {
				b.WriteByte('_')
				under = false
			}
			b.WriteRune(r)
		} else {
			under = true
		}
	}
	return b.String()
}

// checkMounts refuses, before anything is made, mounts this driver cannot
// honour: without a mount namespace of its own, a plain process cannot
// have a path made read-only or a propagation mode, and it has only
// local volumes.
func (d *Driver) checkMounts(spec driver.Spec) error {
	seen := map[string]string{}
	for _, m := range spec.Mounts {
		bad := func(format string, args ...any) error {
			return errdefs.Invalid("task %s: mount at %s: "+format, append([]any{spec.TaskID, m.Target}, args...)...)
		}
		if m.ReadOnly {
			return bad("the process driver cannot make a mount read-only (a plain process has no mount namespace); drop readonly, or use the docker driver")
		}
		if m.Propagation != "" {
			return bad("the process driver has no mount propagation (a plain process has no mount namespace); drop bind-propagation")
		}
		if m.Type == driver.MountVolume {
			if m.VolumeDriver != "" && m.VolumeDriver != "local" {
				return bad("volume driver %q is not available to the process driver: its volumes are local directories", m.VolumeDriver)
			}
			if len(m.VolumeOptions) > 0 {
				return bad("volume options (volume-opt) are not supported by the process driver: its volumes are plain directories under the node's data dir")
			}
			if m.Source != "" && d.volumes == "" {
				return bad("this node's process driver has no volumes directory")
			}
		}
		if m.Type == driver.MountBind {
			if _, err := os.Stat(m.Source); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					// The engine's words, as swarm mode shows them.
					return errdefs.Invalid("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
				}
				return errdefs.Invalid("invalid mount config for type \"bind\": %v", err)
			}
		}
		env := MountEnv(m.Target)
		if other, dup := seen[env]; dup {
			return bad("its variable %s is also the one of the mount at %s: change one target", env, other)
		}
		seen[env] = m.Target
	}
	return nil
}

// prepareMounts makes what the task's mounts need (a named volume's
// directory, kept after the task; a per-task directory for an anonymous
// volume or a tmpfs, a real tmpfs when the node runs as root) and returns
// the variables that tell the task their node paths.
func (d *Driver) prepareMounts(spec driver.Spec, dir string, cfg shimConfig) ([]string, error) {
	var env []string
	chown := func(p string) error {
		if cfg.UID == nil {
			return nil
		}
		return os.Chown(p, int(*cfg.UID), int(*cfg.GID))
	}
	for i, m := range spec.Mounts {
		var p string
		switch {
		case m.Type == driver.MountBind:
			p = m.Source
		case m.Type == driver.MountVolume && m.Source != "":
			var err error
			if p, err = d.volume(m, chown); err != nil {
				return nil, fmt.Errorf("task %s: volume %s: %w", spec.TaskID, m.Source, err)
			}
		case m.Type == driver.MountVolume:
			p = filepath.Join(dir, dirAnonymous, strconv.Itoa(i))
			if err := os.MkdirAll(p, 0o755); err != nil {
				return nil, fmt.Errorf("task %s: anonymous volume: %w", spec.TaskID, err)
			}
			if err := chown(p); err != nil {
				return nil, fmt.Errorf("task %s: anonymous volume: %w", spec.TaskID, err)
			}
		case m.Type == driver.MountTmpfs:
			p = filepath.Join(dir, dirTmpfs, strconv.Itoa(i))
			mode := fs.FileMode(m.TmpfsMode & 0o7777)
			if mode == 0 {
				mode = 0o1777
			}
			if err := os.MkdirAll(p, 0o700); err != nil {
				return nil, fmt.Errorf("task %s: tmpfs: %w", spec.TaskID, err)
			}
			if err := mountTmpfs(p, m.TmpfsSize, mode); err != nil {
				return nil, fmt.Errorf("task %s: tmpfs at %s: %w", spec.TaskID, m.Target, err)
			}
			if err := os.Chmod(p, mode.Perm()|modeBits(mode)); err != nil {
				return nil, fmt.Errorf("task %s: tmpfs: %w", spec.TaskID, err)
			}
		}
		env = append(env, MountEnv(m.Target)+"="+p)
	}
	return env, nil
}

// modeBits turns the setuid, setgid and sticky bits of a Unix mode into
// Go's.
func modeBits(m fs.FileMode) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// volume is the directory of a named volume, VOLUMES/NAME/_data as the
// engine's local driver lays it out, made on first use and kept.
func (d *Driver) volume(m driver.Mount, chown func(string) error) (string, error) {
	vdir := filepath.Join(d.volumes, m.Source)
	data := filepath.Join(vdir, "_data")
	if fi, err := os.Stat(data); err == nil && fi.IsDir() {
		return data, nil
	}
	if err := os.MkdirAll(vdir, 0o700); err != nil {
		return "", err
	}
	rec, err := json.Marshal(volumeRecord{Name: m.Source, Labels: m.VolumeLabels, CreatedAt: time.Now().UTC()})
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(vdir, "volume.json"), rec, 0o600); err != nil {
		return "", err
	}
	if err := os.Mkdir(data, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	return data, chown(data)
}

// unmountTaskTmpfs unmounts the task's tmpfs mounts, if any, so its
// directory can be removed.
func unmountTaskTmpfs(dir string) {
	ents, err := os.ReadDir(filepath.Join(dir, dirTmpfs))
	if err != nil {
		return
	}
	for _, e := range ents {
		unmountTmpfs(filepath.Join(dir, dirTmpfs, e.Name()))
	}
}
