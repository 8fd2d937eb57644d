package cli

import (
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/spf13/pflag"
)

// healthFlags are the --health-* flags and --no-healthcheck, with the
// docker CLI's names and semantics: a duration of 0 (or a flag not given)
// keeps the image's or Docker's default.
type healthFlags struct {
	cmd                                           string
	interval, timeout, startPeriod, startInterval time.Duration
	retries                                       int
	none                                          bool
}

var healthSettingFlags = []string{"health-cmd", "health-interval", "health-timeout", "health-retries", "health-start-period", "health-start-interval"}

func (h *healthFlags) register(flags *pflag.FlagSet) {
	flags.StringVar(&h.cmd, "health-cmd", "", "Command to run to check health (run with /bin/sh -c)")
	flags.DurationVar(&h.interval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 30s)")
	flags.DurationVar(&h.timeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 30s)")
	flags.IntVar(&h.retries, "health-retries", 0, "Consecutive failures needed to report unhealthy (default 3)")
	flags.DurationVar(&h.startPeriod, "health-start-period", 0, "Start period for the task to initialize before failures count towards unhealthy (ms|s|m|h) (default 0s)")
	flags.DurationVar(&h.startInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 5s)")
	flags.BoolVar(&h.none, "no-healthcheck", false, "Disable any health check, including the image's HEALTHCHECK")
}

func (h *healthFlags) validate(flags *pflag.FlagSet) error {
	if h.none && anyChanged(flags, healthSettingFlags...) {
		return fmt.Errorf("--no-healthcheck conflicts with --health-* options")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"health-interval", h.interval}, {"health-timeout", h.timeout}, {"health-start-period", h.startPeriod}, {"health-start-interval", h.startInterval}} {
		if err := nonNegative(flags, d.name, d.v); err != nil {
			return err
		}
		if flags.Changed(d.name) && d.v > 0 && d.v < time.Millisecond {
			return fmt.Errorf("invalid --%s %s: must be at least 1ms (or 0 for the default)", d.name, d.v)
		}
	}
	if flags.Changed("health-retries") && h.retries < 0 {
		return fmt.Errorf("invalid --health-retries %d: must be 0 or more", h.retries)
	}
	return nil
}

// apply edits cs.Healthcheck as `docker service update` does (and create
// is an update of an empty spec): only the given flags change, an empty
// --health-cmd goes back to the image's check, and a health flag given
// after --no-healthcheck was in force turns checking on again.
func (h *healthFlags) apply(flags *pflag.FlagSet, cs *swarm.ContainerSpec) {
	if !flags.Changed("no-healthcheck") && !anyChanged(flags, healthSettingFlags...) {
		return
	}
	if h.none {
		cs.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		return
	}
	if cs.Healthcheck == nil {
		cs.Healthcheck = &container.HealthConfig{}
	}
	hc := cs.Healthcheck
	if len(hc.Test) > 0 && hc.Test[0] == "NONE" {
		hc.Test = nil
	}
	if flags.Changed("health-interval") {
		hc.Interval = h.interval
	}
	if flags.Changed("health-timeout") {
		hc.Timeout = h.timeout
	}
	if flags.Changed("health-start-period") {
		hc.StartPeriod = h.startPeriod
	}
	if flags.Changed("health-start-interval") {
		hc.StartInterval = h.startInterval
	}
	if flags.Changed("health-retries") {
		hc.Retries = h.retries
	}
	if flags.Changed("health-cmd") {
		hc.Test = nil
		if h.cmd != "" {
			hc.Test = []string{"CMD-SHELL", h.cmd}
		}
	}
}
