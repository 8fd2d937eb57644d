package daemon

import (
	"context"
	"log/slog"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// openDocker returns the docker driver when an engine answers at host.
func openDocker(ctx context.Context, host string, log *slog.Logger) driver.Driver {
	return nil // wired once the docker driver lands
}
