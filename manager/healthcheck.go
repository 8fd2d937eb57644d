package manager

import (
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// minHealthDuration is Docker's floor for a health check's durations: 0
// means "the default", anything else under 1 ms is a mistake.
const minHealthDuration = time.Millisecond

// validateHealthcheck refuses what Docker would refuse in a health check,
// and the Test forms no driver can run.
func validateHealthcheck(h *container.HealthConfig) error {
	if h == nil {
		return nil
	}
	if len(h.Test) > 0 {
		switch h.Test[0] {
		case "NONE":
			if len(h.Test) > 1 {
				return errdefs.Invalid("ContainerSpec.Healthcheck.Test: [\"NONE\"] takes no arguments; use [\"NONE\"] alone to disable the check")
			}
		case "CMD":
			if len(h.Test) < 2 || h.Test[1] == "" {
				return errdefs.Invalid("ContainerSpec.Healthcheck.Test: [\"CMD\", ...] needs a program to run, e.g. [\"CMD\", \"/bin/check\", \"arg\"]")
			}
		case "CMD-SHELL":
			if len(h.Test) != 2 || strings.TrimSpace(h.Test[1]) == "" {
				return errdefs.Invalid("ContainerSpec.Healthcheck.Test: [\"CMD-SHELL\", COMMAND] takes exactly one non-empty shell command")
			}
		default:
			return errdefs.Invalid("ContainerSpec.Healthcheck.Test: unknown form %q; use [\"CMD\", program, args...], [\"CMD-SHELL\", command] or [\"NONE\"]", h.Test[0])
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if d.v < 0 {
			return errdefs.Invalid("ContainerSpec.Healthcheck.%s %s must not be negative (0 means the default)", d.name, d.v)
		}
		if d.v != 0 && d.v < minHealthDuration {
			return errdefs.Invalid("ContainerSpec.Healthcheck.%s %s cannot be less than %s (0 means the default)", d.name, d.v, minHealthDuration)
		}
	}
	if h.Retries < 0 {
		return errdefs.Invalid("ContainerSpec.Healthcheck.Retries %d must not be negative (0 means the default, 3)", h.Retries)
	}
	return nil
}
