package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/docker"
)

// openDocker returns the docker driver when an engine answers at host
// (default: the standard engine socket), or nil.
func openDocker(ctx context.Context, opts docker.Options, log *slog.Logger) driver.Driver {
	host := opts.Host
	d, err := docker.New(opts)
	if err != nil {
		log.Info("docker driver unavailable", "err", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := d.Available(ctx); err != nil {
		log.Info("no Docker Engine answers; the docker driver is off on this node", "host", host, "err", err)
		d.Close()
		return nil
	}
	return d
}
