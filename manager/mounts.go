package manager

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// localVolumeNameRE is the local volume driver's rule for names (the
// engine's, and the process driver's: a name is a directory under the
// node's data dir).
var localVolumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// validateMounts checks a spec's mounts as dockerd's swarm executor and
// its mount parser do, before anything is stored: a target that is
// absolute (and not /) and given once; a bind with an absolute source; a
// volume with a name (or none: anonymous); a tmpfs without a source; the
// options of one type only on that type. Whether a bind's source exists
// is the node's business: a task whose source is missing fails there. A
// volume name with a service template (data-{{.Task.Slot}}) is checked by
// the node once filled.
func validateMounts(cs *swarm.ContainerSpec) error {
	targets := map[string]bool{}
	for i := range cs.Mounts {
		m := &cs.Mounts[i]
		bad := func(format string, args ...any) error {
			return errdefs.Invalid("invalid mount %d (target %q): "+format, append([]any{i + 1, m.Target}, args...)...)
		}
		if m.Type == "" {
			m.Type = mount.TypeVolume // docker's default
		}
		switch m.Type {
		case mount.TypeBind, mount.TypeVolume, mount.TypeTmpfs:
		case mount.TypeNamedPipe, mount.TypeCluster, mount.TypeImage:
			return bad("mount type %q is not supported by flotilla: use bind, volume or tmpfs", m.Type)
		default:
			return bad("invalid mount type %q: use bind, volume or tmpfs", m.Type)
		}
		if m.Target == "" {
			return bad("the target is missing; give target=/PATH in the container")
		}
		if !path.IsAbs(m.Target) {
			return bad("invalid mount target, must be an absolute path: %s", m.Target)
		}
		t := path.Clean(m.Target)
		if t == "/" {
			return bad("invalid specification: destination can't be '/'")
		}
		if targets[t] {
			return errdefs.Invalid("ContainerSpec: duplicate mount point: %s", m.Target)
		}
		targets[t] = true
		if m.BindOptions != nil && m.Type != mount.TypeBind {
			return bad("field BindOptions must not be specified for a %s mount (bind-* options are for type=bind)", m.Type)
		}
		if m.VolumeOptions != nil && m.Type != mount.TypeVolume {
			return bad("field VolumeOptions must not be specified for a %s mount (volume-* options are for type=volume)", m.Type)
		}
		if m.TmpfsOptions != nil && m.Type != mount.TypeTmpfs {
			return bad("field TmpfsOptions must not be specified for a %s mount (tmpfs-* options are for type=tmpfs)", m.Type)
		}
		if m.ImageOptions != nil || m.ClusterOptions != nil {
			return bad("ImageOptions and ClusterOptions are not supported by flotilla")
		}
		switch m.Type {
		case mount.TypeBind:
			if m.Source == "" {
				return bad("a bind mount needs a source: the absolute path on the node")
			}
			if !path.IsAbs(m.Source) {
				return bad("invalid bind mount source, must be an absolute path: %s", m.Source)
			}
			if o := m.BindOptions; o != nil {
				if o.Propagation != "" && !validPropagation(o.Propagation) {
					return bad("invalid propagation mode: %s", o.Propagation)
				}
				if o.CreateMountpoint {
					return bad("BindOptions.CreateMountpoint is not supported by flotilla: a missing source fails the task, as in swarm mode")
				}
			}
		case mount.TypeVolume:
			if strings.HasPrefix(m.Source, "/") {
				return bad("invalid volume mount source, must not be an absolute path: %s (for a path on the node, use type=bind)", m.Source)
			}
			drv := ""
			if o := m.VolumeOptions; o != nil {
				if o.DriverConfig != nil {
					drv = o.DriverConfig.Name
				}
				if o.Subpath != "" {
					return bad("VolumeOptions.Subpath (volume-subpath) is not supported yet by flotilla")
				}
			}
			if m.Source == "" {
				if m.ReadOnly {
					return bad("must not set ReadOnly mode when using anonymous volumes")
				}
			} else if (drv == "" || drv == "local") && !strings.Contains(m.Source, "{{") && !localVolumeNameRE.MatchString(m.Source) {
				return bad("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed (at least two characters); for a path on the node, use type=bind with an absolute source", m.Source)
			}
		case mount.TypeTmpfs:
			if m.Source != "" {
				return bad("invalid tmpfs source, source must be empty")
			}
			if o := m.TmpfsOptions; o != nil {
				if o.SizeBytes < 0 {
					return bad("tmpfs size must not be negative")
				}
				if o.Mode&^0o7777 != 0 {
					return bad("invalid tmpfs mode %o: use permission bits (e.g. 1777)", o.Mode)
				}
				if len(o.Options) > 0 {
					return bad("TmpfsOptions.Options is not supported yet by flotilla")
				}
			}
		}
		if cs.Labels[LabelDriver] == "process" {
			if err := processMountLimits(m); err != nil {
				return bad("%s", err)
			}
		}
	}
	return nil
}

// processMountLimits refuses up front what the process driver would
// reject on every node (a plain process has no mount namespace; see
// docs/operations.md, "Mounts and volumes").
func processMountLimits(m *mount.Mount) error {
	const why = "a process-driver task has no mount namespace"
	switch {
	case m.ReadOnly:
		return fmt.Errorf("the process driver cannot make a mount read-only (%s); drop readonly, or use the docker driver", why)
	case m.BindOptions != nil && m.BindOptions.Propagation != "":
		return fmt.Errorf("the process driver has no bind propagation (%s); drop bind-propagation", why)
	case m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil:
		d := m.VolumeOptions.DriverConfig
		if d.Name != "" && d.Name != "local" {
			return fmt.Errorf("volume driver %q is not available to the process driver: its volumes are local directories", d.Name)
		}
		if len(d.Options) > 0 {
			return errors.New("volume options (volume-opt) are not supported by the process driver: its volumes are plain directories under the node's data dir")
		}
	}
	return nil
}

func validPropagation(p mount.Propagation) bool {
	for _, q := range mount.Propagations {
		if p == q {
			return true
		}
	}
	return false
}
