package docker

import (
	"maps"
	"os"

	"github.com/moby/moby/api/types/mount"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// engineMounts are a task's mounts as the engine takes them
// (HostConfig.Mounts), which is what swarm mode's executor does: a bind
// of a node path (the engine refuses a missing one: "invalid mount
// config for type "bind": bind source path does not exist: /x", and the
// task is rejected with those words); a volume the engine creates on
// first use with the driver, options and labels given, labelled
// com.flotilla.managed=true and with the driver's labels, and keeps when
// the task's container is removed (an anonymous volume goes with its
// container); a tmpfs with its size and mode.
func (d *Driver) engineMounts(ms []driver.Mount) []mount.Mount {
	if len(ms) == 0 {
		return nil
	}
	out := make([]mount.Mount, 0, len(ms))
	for _, m := range ms {
		em := mount.Mount{Type: mount.Type(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		switch m.Type {
		case driver.MountBind:
			if m.Propagation != "" {
				em.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(m.Propagation)}
			}
		case driver.MountVolume:
			labels := make(map[string]string, len(m.VolumeLabels)+len(d.labels)+1)
			maps.Copy(labels, m.VolumeLabels)
			maps.Copy(labels, d.labels)
			labels[LabelManaged] = "true"
			em.VolumeOptions = &mount.VolumeOptions{NoCopy: m.NoCopy, Labels: labels}
			if m.VolumeDriver != "" || len(m.VolumeOptions) > 0 {
				em.VolumeOptions.DriverConfig = &mount.Driver{Name: m.VolumeDriver, Options: maps.Clone(m.VolumeOptions)}
			}
		case driver.MountTmpfs:
			if m.TmpfsSize != 0 || m.TmpfsMode != 0 {
				em.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: m.TmpfsSize, Mode: os.FileMode(m.TmpfsMode)}
			}
		}
		out = append(out, em)
	}
	return out
}
