package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
)

// Load reads the compose files of a stack with the compose-spec
// library, as `docker stack deploy -c` does: later files are merged over
// earlier ones; ${VAR} is interpolated from env (KEY=VALUE entries, for
// a caller that fills in variables itself), then the process's
// environment, then the .env file next to the first file, the first
// that sets it winning. It returns the project and a warning for each
// key flotilla does not act on; the library's own warnings (a variable
// that is not set) go to warnings.
func Load(ctx context.Context, stack string, files, env []string, warnings io.Writer) (*types.Project, []string, error) {
	// The library logs its own warnings (a variable that is not set)
	// through logrus: print them as this CLI's warnings.
	logrus.SetFormatter(warningFormatter{})
	logrus.SetOutput(warnings)
	defer logrus.SetOutput(io.Discard)
	if len(files) == 0 {
		return nil, nil, errors.New("please specify a compose file (--compose-file/-c)")
	}
	if !stackNameRE.MatchString(stack) {
		// The compose library's rule for a project name.
		return nil, nil, fmt.Errorf("invalid stack name %q: use lowercase letters, digits, '-' and '_', starting with a letter or digit", stack)
	}
	options := func() (*composecli.ProjectOptions, error) {
		return composecli.NewProjectOptions(files,
			composecli.WithName(stack),
			composecli.WithEnv(env),
			composecli.WithOsEnv,
			composecli.WithEnvFiles(),
			composecli.WithDotEnv,
		)
	}
	o, err := options()
	if err != nil {
		return nil, nil, err
	}
	// The raw model (merged and interpolated) tells which keys the files
	// set; the typed project is what gets converted. (The library's
	// LoadModel interpolates without the environment: give it.)
	wd, err := o.GetWorkingDir()
	if err != nil {
		return nil, nil, err
	}
	details, err := o.ReadConfigFiles(ctx, wd, o)
	if err != nil {
		return nil, nil, err
	}
	details.Environment = o.Environment
	model, err := loader.LoadModelWithContext(ctx, *details, func(lo *loader.Options) { lo.SetProjectName(stack, true) })
	if err != nil {
		if m := falseSchema.FindStringSubmatch(err.Error()); m != nil {
			// The schema's own words for an unknown key are terse.
			err = fmt.Errorf("%w (%s is not a key of the compose specification)", err, m[1])
		}
		return nil, nil, err
	}
	if o, err = options(); err != nil {
		return nil, nil, err
	}
	p, err := o.LoadProject(ctx)
	if err != nil {
		return nil, nil, err
	}
	return p, unsupportedKeys(model), nil
}

var stackNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// falseSchema finds the key in the schema's error for an unknown key:
// "validating FILE: services.web.imagee false schema".
var falseSchema = regexp.MustCompile(`([\w.-]+) false schema`)

// The compose keys flotilla turns into the service spec; every other key
// set in a file is named in a warning.
var (
	stackTopKeys = []string{"name", "version", "services", "networks", "volumes", "secrets", "configs"}
	// restart is docker's fallback for deploy.restart_policy; env_file
	// and label_file are folded in by the loader.
	stackServiceKeys = []string{
		"image", "command", "entrypoint", "environment", "env_file", "labels", "label_file", "ports", "networks",
		"healthcheck", "deploy", "hostname", "working_dir", "user", "stop_grace_period", "restart", "volumes", "secrets", "configs", driverKey,
	}
	stackDeployKeys = []string{
		"mode", "replicas", "labels", "update_config", "rollback_config", "resources", "restart_policy",
		"placement", "endpoint_mode",
	}
	stackResourceKeys = []string{"cpus", "memory"}
	stackNetworkKeys  = []string{"name", "driver", "driver_opts", "external", "internal", "attachable", "labels", "ipam"}
)

// driverKey is the service-level extension that chooses the task
// driver: it becomes the container label com.flotilla.driver.
const driverKey = "x-flotilla-driver"

// unsupportedKeys names, one warning per place, the keys of a compose
// model flotilla does not act on.
func unsupportedKeys(model map[string]any) []string {
	var warnings []string
	warn := func(where string, m map[string]any, known []string) {
		var bad []string
		for k := range m {
			// x- keys are compose's extension fields.
			if !slices.Contains(known, k) && !strings.HasPrefix(k, "x-") {
				bad = append(bad, k)
			}
		}
		if len(bad) == 0 {
			return
		}
		sort.Strings(bad)
		in := "the compose file"
		if where != "" {
			in = where
		}
		warnings = append(warnings, fmt.Sprintf("warning: %s: ignoring keys flotilla does not support yet: %s", in, strings.Join(bad, ", ")))
	}
	asMap := func(v any) map[string]any { m, _ := v.(map[string]any); return m }
	warn("", model, stackTopKeys)
	services := asMap(model["services"])
	for _, name := range sortedKeys(services) {
		svc := asMap(services[name])
		where := "service " + name
		warn(where, svc, stackServiceKeys)
		deploy := asMap(svc["deploy"])
		warn(where+" deploy", deploy, stackDeployKeys)
		res := asMap(deploy["resources"])
		warn(where+" deploy.resources", res, []string{"limits", "reservations"})
		warn(where+" deploy.resources.limits", asMap(res["limits"]), stackResourceKeys)
		warn(where+" deploy.resources.reservations", asMap(res["reservations"]), stackResourceKeys)
		warn(where+" deploy.placement", asMap(deploy["placement"]), []string{"constraints", "preferences", "max_replicas_per_node"})
		for i, p := range asSlice(svc["ports"]) {
			warn(fmt.Sprintf("%s ports[%d]", where, i), asMap(p), []string{"target", "published", "protocol", "mode", "name"})
		}
		for _, n := range sortedKeys(asMap(svc["networks"])) {
			warn(where+" network "+n, asMap(asMap(svc["networks"])[n]), []string{"aliases"})
		}
	}
	volumes := asMap(model["volumes"])
	for _, name := range sortedKeys(volumes) {
		warn("volume "+name, asMap(volumes[name]), []string{"name", "driver", "driver_opts", "external", "labels"})
	}
	networks := asMap(model["networks"])
	for _, name := range sortedKeys(networks) {
		warn("network "+name, asMap(networks[name]), stackNetworkKeys)
	}
	return warnings
}

// warningFormatter prints a library's log entry as "warning: MESSAGE".
type warningFormatter struct{}

func (warningFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return []byte(strings.ToLower(e.Level.String()) + ": " + e.Message + "\n"), nil
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
