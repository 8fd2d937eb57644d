package daemon

import (
	"bufio"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/engineapi"
)

// describe reports this node's hostname, platform, capacity and the task
// drivers it offers (as Engine plugins of type Driver, which the
// scheduler matches against the driver a task asks for).
func (d *Daemon) describe() swarm.NodeDescription {
	desc := describe(d.cfg.Hostname)
	names := make([]string, 0, len(d.drivers))
	for name := range d.drivers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		desc.Engine.Plugins = append(desc.Engine.Plugins, swarm.PluginDescription{Type: "Driver", Name: name})
	}
	return desc
}

func describe(hostname string) swarm.NodeDescription {
	return swarm.NodeDescription{
		Hostname: hostname,
		Platform: swarm.Platform{Architecture: archName(), OS: runtime.GOOS},
		Resources: swarm.Resources{
			NanoCPUs:    int64(runtime.NumCPU()) * 1e9,
			MemoryBytes: memTotal(),
		},
		Engine: swarm.EngineDescription{EngineVersion: engineapi.Version},
	}
}

// archName uses the kernel's names, as Docker does (x86_64, aarch64).
func archName() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
