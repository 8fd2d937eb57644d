package agent

import (
	"maps"

	"github.com/moby/moby/api/types/mount"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// mountsOf turns a spec's mounts into the driver's, with the service
// templates in sources and targets filled (as swarm does, e.g.
// source=data-{{.Task.Slot}}).
func mountsOf(tc templateContext, ms []mount.Mount) []driver.Mount {
	if len(ms) == 0 {
		return nil
	}
	out := make([]driver.Mount, 0, len(ms))
	for _, m := range ms {
		dm := driver.Mount{Type: string(m.Type), Source: tc.expand(m.Source), Target: tc.expand(m.Target), ReadOnly: m.ReadOnly}
		if dm.Type == "" {
			dm.Type = driver.MountVolume
		}
		if o := m.BindOptions; o != nil {
			dm.Propagation = string(o.Propagation)
		}
		if o := m.VolumeOptions; o != nil {
			dm.NoCopy, dm.VolumeLabels = o.NoCopy, maps.Clone(o.Labels)
			if d := o.DriverConfig; d != nil {
				dm.VolumeDriver, dm.VolumeOptions = d.Name, maps.Clone(d.Options)
			}
		}
		if o := m.TmpfsOptions; o != nil {
			dm.TmpfsSize, dm.TmpfsMode = o.SizeBytes, uint32(o.Mode&0o7777)
		}
		out = append(out, dm)
	}
	return out
}
