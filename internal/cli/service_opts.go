package cli

import (
	"fmt"
	"github.com/flotilla-org/flotilla/internal/stack"
	"github.com/flotilla-org/flotilla/manager/scheduler"
	"math/big"
	"os"
	"slices"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/swarm"
	"github.com/spf13/pflag"
)

const (
	// DriverLabel is the container label that selects the task driver on a
	// flotilla worker: "docker" (the default) or "process". `--driver X` is
	// a shorthand for `--container-label com.flotilla.driver=X`, which is
	// also how a docker CLI user selects it.
	DriverLabel = scheduler.DriverLabel

	// Defaults that fill the rest of a flag family when only part of it is
	// given (swarmkit's defaults, as docker uses them).
	defaultUpdateParallelism = 1
	defaultUpdateMonitor     = 5 * time.Second
	defaultRestartDelay      = 5 * time.Second

	// defaultConvergeTimeout is how long a convergence wait tolerates no
	// progress at all before it gives up.
	defaultConvergeTimeout = 2 * time.Minute
)

// Flag values with a fixed set of choices.
var (
	serviceModes      = []string{"replicated", "global"}
	restartConditions = []string{string(swarm.RestartPolicyConditionNone), string(swarm.RestartPolicyConditionOnFailure), string(swarm.RestartPolicyConditionAny)}
	updateActions     = []string{string(swarm.UpdateFailureActionPause), string(swarm.UpdateFailureActionContinue), string(swarm.UpdateFailureActionRollback)}
	rollbackActions   = []string{string(swarm.UpdateFailureActionPause), string(swarm.UpdateFailureActionContinue)}
	updateOrders      = []string{string(swarm.UpdateOrderStopFirst), string(swarm.UpdateOrderStartFirst)}
	taskDrivers       = []string{"docker", "process"}
)

// updateFlags is one of the --update-* or --rollback-* flag families.
type updateFlags struct {
	prefix          string // "update" or "rollback"
	parallelism     int64
	delay, monitor  time.Duration
	failureAction   string
	maxFailureRatio float32
	order           string
}

func (u *updateFlags) register(flags *pflag.FlagSet, done, verb string, actions []string) {
	flags.Int64Var(&u.parallelism, u.prefix+"-parallelism", defaultUpdateParallelism, fmt.Sprintf("Maximum number of tasks %s simultaneously (0 to %s all at once)", done, verb))
	flags.DurationVar(&u.delay, u.prefix+"-delay", 0, fmt.Sprintf("Delay between %ss (ns|us|ms|s|m|h)", u.prefix))
	flags.DurationVar(&u.monitor, u.prefix+"-monitor", 0, "Duration after each task "+u.prefix+" to monitor for failure (ns|us|ms|s|m|h)")
	flags.StringVar(&u.failureAction, u.prefix+"-failure-action", "", fmt.Sprintf("Action on %s failure (%s) (default %q)", u.prefix, stack.QuoteList(actions), swarm.UpdateFailureActionPause))
	flags.Float32Var(&u.maxFailureRatio, u.prefix+"-max-failure-ratio", 0, fmt.Sprintf("Failure rate to tolerate while tasks are %s (0 to 1)", done))
	flags.StringVar(&u.order, u.prefix+"-order", "", fmt.Sprintf("%s order (%s) (default %q)", capitalize(u.prefix), stack.QuoteList(updateOrders), swarm.UpdateOrderStopFirst))
}

func (u *updateFlags) names() []string {
	var out []string
	for _, n := range []string{"parallelism", "delay", "monitor", "failure-action", "max-failure-ratio", "order"} {
		out = append(out, u.prefix+"-"+n)
	}
	return out
}

func (u *updateFlags) validate(flags *pflag.FlagSet, actions []string) error {
	p := u.prefix
	if flags.Changed(p+"-parallelism") && u.parallelism < 0 {
		return fmt.Errorf("invalid --%s-parallelism %d: must be 0 or more", p, u.parallelism)
	}
	if err := nonNegative(flags, p+"-delay", u.delay); err != nil {
		return err
	}
	if err := nonNegative(flags, p+"-monitor", u.monitor); err != nil {
		return err
	}
	if flags.Changed(p+"-failure-action") && !slices.Contains(actions, u.failureAction) {
		return fmt.Errorf("invalid --%s-failure-action %q: must be %s", p, u.failureAction, stack.QuoteList(actions))
	}
	if flags.Changed(p+"-max-failure-ratio") && (u.maxFailureRatio < 0 || u.maxFailureRatio > 1) {
		return fmt.Errorf("invalid --%s-max-failure-ratio %v: must be between 0 and 1", p, u.maxFailureRatio)
	}
	if flags.Changed(p+"-order") && !slices.Contains(updateOrders, u.order) {
		return fmt.Errorf("invalid --%s-order %q: must be %s", p, u.order, stack.QuoteList(updateOrders))
	}
	return nil
}

// apply changes the fields of *cfg whose flags were given, creating the
// config from the defaults when it does not exist yet.
func (u *updateFlags) apply(flags *pflag.FlagSet, cfg **swarm.UpdateConfig) {
	if !anyChanged(flags, u.names()...) {
		return
	}
	if *cfg == nil {
		*cfg = &swarm.UpdateConfig{
			Parallelism:   defaultUpdateParallelism,
			FailureAction: swarm.UpdateFailureActionPause,
			Monitor:       defaultUpdateMonitor,
			Order:         swarm.UpdateOrderStopFirst,
		}
	}
	c, p := *cfg, u.prefix
	if flags.Changed(p + "-parallelism") {
		c.Parallelism = uint64(u.parallelism)
	}
	if flags.Changed(p + "-delay") {
		c.Delay = u.delay
	}
	if flags.Changed(p + "-monitor") {
		c.Monitor = u.monitor
	}
	if flags.Changed(p + "-failure-action") {
		c.FailureAction = swarm.FailureAction(u.failureAction)
	}
	if flags.Changed(p + "-max-failure-ratio") {
		c.MaxFailureRatio = u.maxFailureRatio
	}
	if flags.Changed(p + "-order") {
		c.Order = swarm.UpdateOrder(u.order)
	}
}

// serviceOpts are the flags create and update share, and the values parsed
// from them by validate.
type serviceOpts struct {
	replicas int64

	reserveCPU, reserveMemory string
	limitCPU, limitMemory     string

	restartCondition   string
	restartDelay       time.Duration
	restartMaxAttempts int64
	restartWindow      time.Duration

	update, rollback updateFlags
	health           healthFlags

	stopGracePeriod time.Duration
	workdir         string
	user            string
	hostname        string
	driver          string

	detach  bool
	quiet   bool
	timeout time.Duration

	// Parsed by validate.
	reserveNanoCPUs, limitNanoCPUs int64
	reserveBytes, limitBytes       int64
}

var (
	resourceFlags = []string{"reserve-cpu", "reserve-memory", "limit-cpu", "limit-memory"}
	restartFlags  = []string{"restart-condition", "restart-delay", "restart-max-attempts", "restart-window"}
)

func (o *serviceOpts) register(flags *pflag.FlagSet) {
	o.update.prefix, o.rollback.prefix = "update", "rollback"
	flags.Int64Var(&o.replicas, "replicas", 0, "Number of tasks")
	flags.StringVar(&o.reserveCPU, "reserve-cpu", "", "Reserve CPUs (e.g. 0.5)")
	flags.StringVar(&o.reserveMemory, "reserve-memory", "", "Reserve memory (bytes, or with a unit: 64M, 1G)")
	flags.StringVar(&o.limitCPU, "limit-cpu", "", "Limit CPUs (e.g. 1.5)")
	flags.StringVar(&o.limitMemory, "limit-memory", "", "Limit memory (bytes, or with a unit: 64M, 1G)")
	flags.StringVar(&o.restartCondition, "restart-condition", "", fmt.Sprintf("Restart when condition is met (%s) (default %q)", stack.QuoteList(restartConditions), swarm.RestartPolicyConditionAny))
	flags.DurationVar(&o.restartDelay, "restart-delay", 0, "Delay between restart attempts (ns|us|ms|s|m|h) (default 5s)")
	flags.Int64Var(&o.restartMaxAttempts, "restart-max-attempts", 0, "Maximum number of restarts before giving up (0: no limit)")
	flags.DurationVar(&o.restartWindow, "restart-window", 0, "Window used to evaluate the restart policy (ns|us|ms|s|m|h)")
	o.update.register(flags, "updated", "update", updateActions)
	o.rollback.register(flags, "rolled back", "roll back", rollbackActions)
	o.health.register(flags)
	flags.DurationVar(&o.stopGracePeriod, "stop-grace-period", 0, "Time to wait before force killing a task (ns|us|ms|s|m|h) (default 10s)")
	flags.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the task")
	flags.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	flags.StringVar(&o.hostname, "hostname", "", "Task hostname")
	flags.StringVar(&o.driver, "driver", "", fmt.Sprintf("Task driver (%s); sets the container label %s", stack.QuoteList(taskDrivers), DriverLabel))
	flags.BoolVarP(&o.detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output")
	flags.DurationVar(&o.timeout, "timeout", defaultConvergeTimeout, "Without --detach, give up when the service makes no progress towards convergence for this long (0: wait forever)")
}

// validate checks the shared flags and parses the ones that need it.
func (o *serviceOpts) validate(flags *pflag.FlagSet) error {
	var err error
	if flags.Changed("replicas") && o.replicas < 0 {
		return fmt.Errorf("invalid --replicas %d: must be 0 or more", o.replicas)
	}
	if flags.Changed("reserve-cpu") {
		if o.reserveNanoCPUs, err = parseNanoCPUs("reserve-cpu", o.reserveCPU); err != nil {
			return err
		}
	}
	if flags.Changed("limit-cpu") {
		if o.limitNanoCPUs, err = parseNanoCPUs("limit-cpu", o.limitCPU); err != nil {
			return err
		}
	}
	if flags.Changed("reserve-memory") {
		if o.reserveBytes, err = parseMemBytes("reserve-memory", o.reserveMemory); err != nil {
			return err
		}
	}
	if flags.Changed("limit-memory") {
		if o.limitBytes, err = parseMemBytes("limit-memory", o.limitMemory); err != nil {
			return err
		}
	}
	if flags.Changed("restart-condition") && !slices.Contains(restartConditions, o.restartCondition) {
		return fmt.Errorf("invalid --restart-condition %q: must be %s", o.restartCondition, stack.QuoteList(restartConditions))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"restart-delay", o.restartDelay}, {"restart-window", o.restartWindow}, {"stop-grace-period", o.stopGracePeriod}, {"timeout", o.timeout}} {
		if err := nonNegative(flags, d.name, d.v); err != nil {
			return err
		}
	}
	if flags.Changed("restart-max-attempts") && o.restartMaxAttempts < 0 {
		return fmt.Errorf("invalid --restart-max-attempts %d: must be 0 or more", o.restartMaxAttempts)
	}
	if err := o.update.validate(flags, updateActions); err != nil {
		return err
	}
	if err := o.rollback.validate(flags, rollbackActions); err != nil {
		return err
	}
	if err := o.health.validate(flags); err != nil {
		return err
	}
	if flags.Changed("driver") {
		if err := validateDriver("--driver", o.driver); err != nil {
			return err
		}
	}
	return nil
}

// apply writes the shared flags the user gave into spec. Flag families
// that were not given leave spec alone (nil stays nil, for the daemon's
// defaults).
func (o *serviceOpts) apply(flags *pflag.FlagSet, spec *swarm.ServiceSpec) {
	tt := &spec.TaskTemplate
	if tt.ContainerSpec == nil {
		tt.ContainerSpec = &swarm.ContainerSpec{}
	}
	cs := tt.ContainerSpec
	if flags.Changed("replicas") && spec.Mode.Replicated != nil {
		n := uint64(o.replicas)
		spec.Mode.Replicated.Replicas = &n
	}
	if anyChanged(flags, resourceFlags...) {
		if tt.Resources == nil {
			tt.Resources = &swarm.ResourceRequirements{}
		}
		r := tt.Resources
		if anyChanged(flags, "reserve-cpu", "reserve-memory") && r.Reservations == nil {
			r.Reservations = &swarm.Resources{}
		}
		if anyChanged(flags, "limit-cpu", "limit-memory") && r.Limits == nil {
			r.Limits = &swarm.Limit{}
		}
		if flags.Changed("reserve-cpu") {
			r.Reservations.NanoCPUs = o.reserveNanoCPUs
		}
		if flags.Changed("reserve-memory") {
			r.Reservations.MemoryBytes = o.reserveBytes
		}
		if flags.Changed("limit-cpu") {
			r.Limits.NanoCPUs = o.limitNanoCPUs
		}
		if flags.Changed("limit-memory") {
			r.Limits.MemoryBytes = o.limitBytes
		}
	}
	if anyChanged(flags, restartFlags...) {
		if tt.RestartPolicy == nil {
			delay, zero, window := defaultRestartDelay, uint64(0), time.Duration(0)
			tt.RestartPolicy = &swarm.RestartPolicy{
				Condition: swarm.RestartPolicyConditionAny, Delay: &delay, MaxAttempts: &zero, Window: &window,
			}
		}
		rp := tt.RestartPolicy
		if flags.Changed("restart-condition") {
			rp.Condition = swarm.RestartPolicyCondition(o.restartCondition)
		}
		if flags.Changed("restart-delay") {
			d := o.restartDelay
			rp.Delay = &d
		}
		if flags.Changed("restart-max-attempts") {
			n := uint64(o.restartMaxAttempts)
			rp.MaxAttempts = &n
		}
		if flags.Changed("restart-window") {
			w := o.restartWindow
			rp.Window = &w
		}
	}
	o.update.apply(flags, &spec.UpdateConfig)
	o.rollback.apply(flags, &spec.RollbackConfig)
	o.health.apply(flags, cs)
	if flags.Changed("stop-grace-period") {
		d := o.stopGracePeriod
		cs.StopGracePeriod = &d
	}
	if flags.Changed("workdir") {
		cs.Dir = o.workdir
	}
	if flags.Changed("user") {
		cs.User = o.user
	}
	if flags.Changed("hostname") {
		cs.Hostname = o.hostname
	}
	if flags.Changed("driver") {
		if cs.Labels == nil {
			cs.Labels = map[string]string{}
		}
		cs.Labels[DriverLabel] = o.driver
	}
}

func anyChanged(flags *pflag.FlagSet, names ...string) bool {
	for _, n := range names {
		if flags.Changed(n) {
			return true
		}
	}
	return false
}

func nonNegative(flags *pflag.FlagSet, name string, d time.Duration) error {
	if flags.Changed(name) && d < 0 {
		return fmt.Errorf("invalid --%s %s: must not be negative", name, d)
	}
	return nil
}

func validateDriver(what, v string) error {
	if !slices.Contains(taskDrivers, v) {
		return fmt.Errorf("invalid %s %q: must be %s", what, v, stack.QuoteList(taskDrivers))
	}
	return nil
}

// parseNanoCPUs parses a CPU count such as "0.5" into nano CPUs.
func parseNanoCPUs(flag, v string) (int64, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(v))
	if !ok {
		return 0, fmt.Errorf("invalid --%s %q: must be a number of CPUs, such as 0.5 or 2", flag, v)
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("invalid --%s %q: must not be negative", flag, v)
	}
	nano := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, fmt.Errorf("invalid --%s %q: too precise (at most 9 decimal places)", flag, v)
	}
	if !nano.Num().IsInt64() {
		return 0, fmt.Errorf("invalid --%s %q: too large", flag, v)
	}
	return nano.Num().Int64(), nil
}

// parseMemBytes parses a memory size such as "64M" (binary units, as
// docker's) into bytes.
func parseMemBytes(flag, v string) (int64, error) {
	n, err := units.RAMInBytes(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid --%s %q: must be a number of bytes with an optional unit b, k, m, g, t (e.g. 64M, 1.5G)", flag, v)
	}
	return n, nil
}

// validateConstraint checks a placement constraint with the scheduler's own
// parser, so the CLI refuses exactly what the managers would.
func validateConstraint(c string) error {
	_, err := scheduler.ParseConstraints([]string{c})
	return err
}

// parsePlacementPref parses "spread=node.labels.LABEL".
func parsePlacementPref(p string) (swarm.PlacementPreference, error) {
	strategy, arg, ok := strings.Cut(p, "=")
	if !ok || strategy == "" {
		return swarm.PlacementPreference{}, fmt.Errorf("invalid placement preference %q: expected spread=node.labels.LABEL", p)
	}
	if strategy != "spread" {
		return swarm.PlacementPreference{}, fmt.Errorf("invalid placement preference %q: unsupported strategy %q (only spread is supported)", p, strategy)
	}
	if !(strings.HasPrefix(arg, "node.labels.") && len(arg) > len("node.labels.")) &&
		!(strings.HasPrefix(arg, "engine.labels.") && len(arg) > len("engine.labels.")) {
		return swarm.PlacementPreference{}, fmt.Errorf("invalid placement preference %q: can only spread over node.labels.LABEL or engine.labels.LABEL", p)
	}
	return swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: arg}}, nil
}

func placementPrefString(p swarm.PlacementPreference) string {
	if p.Spread == nil {
		return ""
	}
	return "spread=" + p.Spread.SpreadDescriptor
}

// parseEnv validates an --env value. "KEY" alone takes the value from the
// CLI's own environment when it is set there, as docker does.
func parseEnv(v string) (string, error) {
	k, _, hasValue := strings.Cut(v, "=")
	if k == "" || strings.ContainsAny(k, " \t\n") {
		return "", fmt.Errorf("invalid environment variable %q: expected KEY=VALUE", v)
	}
	if !hasValue {
		if val, ok := os.LookupEnv(k); ok {
			return k + "=" + val, nil
		}
	}
	return v, nil
}

func envKey(v string) string {
	k, _, _ := strings.Cut(v, "=")
	return k
}

// setEnv sets entries in env, replacing an entry of the same key in place.
func setEnv(env []string, entries ...string) []string {
	for _, e := range entries {
		i := slices.IndexFunc(env, func(cur string) bool { return envKey(cur) == envKey(e) })
		if i >= 0 {
			env[i] = e
		} else {
			env = append(env, e)
		}
	}
	return env
}

// parseLabels turns key=value (or key) strings into a map.
func parseLabels(what string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(list))
	for _, l := range list {
		k, v, _ := strings.Cut(l, "=")
		if strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("invalid %s %q: expected key=value", what, l)
		}
		m[k] = v
	}
	return m, nil
}

// checkDriverLabel validates a com.flotilla.driver container label and its
// agreement with --driver.
func checkDriverLabel(o *serviceOpts, flags *pflag.FlagSet, labels map[string]string) error {
	v, ok := labels[DriverLabel]
	if !ok {
		return nil
	}
	if err := validateDriver("container label "+DriverLabel, v); err != nil {
		return err
	}
	if flags.Changed("driver") && o.driver != v {
		return fmt.Errorf("conflicting drivers: --driver %s and --container-label %s=%s", o.driver, DriverLabel, v)
	}
	return nil
}

// splitArgs splits a command line the way a POSIX shell splits words:
// whitespace separates, single quotes keep everything, double quotes keep
// everything but backslash escapes of ", \, $ and `.
func splitArgs(s string) ([]string, error) {
	var (
		out     []string
		cur     strings.Builder
		inWord  bool
		quote   rune
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			if quote == '"' && !strings.ContainsRune("\"\\$`\n", r) {
				cur.WriteRune('\\')
			}
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote == '"':
			if r == '"' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if escaped {
		return nil, fmt.Errorf("invalid --args %q: ends with a lone backslash", s)
	}
	if quote != 0 {
		return nil, fmt.Errorf("invalid --args %q: unterminated %c quote", s, quote)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// eachField walks a flag value's comma-separated key=value fields (the
// long form of --publish, --network, --secret, --config), giving set each
// key lower-cased; it returns why the value is malformed, or "".
func eachField(v string, set func(key, val string) (why string)) string {
	for _, kv := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return fmt.Sprintf("%q is not key=value", kv)
		}
		if why := set(strings.ToLower(k), val); why != "" {
			return why
		}
	}
	return ""
}
