package daemon

import (
	"context"
	"path/filepath"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/docker"
	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/agent/driver/process"
)

// DriverConfig says which task drivers a node offers.
type DriverConfig struct {
	// Default runs tasks that name no driver: "docker" when a Docker Engine
	// answers, else "process", unless set.
	Default string
	// DockerHost is the engine's address (never taken from DOCKER_HOST,
	// which may point at flotilla itself).
	DockerHost string
	// NoDocker turns the docker driver off even when an engine answers.
	NoDocker bool
	// DockerLabels are added to every container this node starts.
	DockerLabels map[string]string
	// Fake adds the in-memory fake driver (tests and benchmarks).
	Fake bool
	// Extra drivers by name, e.g. a shared fake driver in tests.
	Extra map[string]driver.Driver
}

// openDrivers builds the node's drivers; docker is offered only when its
// engine answers.
func (d *Daemon) openDrivers(ctx context.Context) (map[string]driver.Driver, string) {
	cfg := d.cfg.Drivers
	drivers := map[string]driver.Driver{}
	p, err := process.New(process.Options{Root: filepath.Join(d.cfg.DataDir, "tasks"), VolumesDir: filepath.Join(d.cfg.DataDir, "volumes")})
	if err != nil {
		d.log.Warn("process driver unavailable", "err", err)
	} else {
		drivers["process"] = p
	}
	if !cfg.NoDocker {
		if dk := openDocker(ctx, docker.Options{Host: cfg.DockerHost, Labels: cfg.DockerLabels,
			PrepareNetwork: d.prepareBridge, NetworkGone: d.bridgeGone}, d.log); dk != nil {
			drivers["docker"] = dk
		}
	}
	if cfg.Fake {
		drivers["fake"] = fake.New()
	}
	for name, drv := range cfg.Extra {
		drivers[name] = drv
	}
	def := cfg.Default
	if def == "" {
		def = "process"
		if _, ok := drivers["docker"]; ok {
			def = "docker"
		}
	}
	return drivers, def
}
