package docker

import (
	"github.com/moby/moby/api/types/mount"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// fileMounts bind-mounts a task's secret and config files read-only, as
// swarm does (the agent made them in memory-backed storage).
func fileMounts(files []driver.File) []mount.Mount {
	out := make([]mount.Mount, 0, len(files))
	for _, f := range files {
		out = append(out, mount.Mount{Type: mount.TypeBind, Source: f.Source, Target: f.Target, ReadOnly: true})
	}
	return out
}
