package cli

import (
	"errors"
	"fmt"
	"slices"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flotilla-org/flotilla/internal/stack"
)

// createOpts are the flags of `service create`.
type createOpts struct {
	serviceOpts
	name            string
	mode            string
	env             []string
	labels          []string
	containerLabels []string
	constraints     []string
	placementPrefs  []string
	publish         []string
	endpointMode    string
	networks        []string
	mounts          []string
	secrets         []string
	configs         []string
}

func newServiceCreateCommand(env *cliEnv) *cobra.Command {
	o := &createOpts{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE_OR_COMMAND [ARG...]",
		Short: "Create a new service",
		Long: "Create a new service.\n\n" +
			"With the docker driver (the default) IMAGE_OR_COMMAND is an image present on the nodes;\n" +
			"with --driver process it is a command each task runs as a plain process.\n" +
			"Without --detach, the command shows the service's progress until it converges.",
		Args: minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		spec, err := o.spec(cmd.Flags(), args)
		if err != nil {
			return err
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		res, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
		if err != nil {
			return err
		}
		for _, w := range res.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), w)
		}
		fmt.Fprintln(out, res.ID)
		if o.detach {
			return nil
		}
		return waitOnService(ctx, api, out, res.ID, waitOptions{op: opCreate, quiet: o.quiet, timeout: o.timeout})
	})
	flags := cmd.Flags()
	// Flags after IMAGE_OR_COMMAND belong to the task's command.
	flags.SetInterspersed(false)
	flags.StringVar(&o.name, "name", "", "Service name")
	flags.StringVar(&o.mode, "mode", "replicated", `Service mode ("replicated" or "global")`)
	flags.StringArrayVarP(&o.env, "env", "e", nil, "Set environment variables (KEY=VALUE)")
	flags.StringArrayVarP(&o.labels, "label", "l", nil, "Service labels (key=value)")
	flags.StringArrayVar(&o.containerLabels, "container-label", nil, "Container labels (key=value)")
	flags.StringArrayVar(&o.constraints, "constraint", nil, "Placement constraints (e.g. node.role==worker)")
	flags.StringArrayVar(&o.placementPrefs, "placement-pref", nil, "Placement preference (spread=node.labels.LABEL)")
	flags.StringArrayVarP(&o.publish, "publish", "p", nil, "Publish a port on every node: [PUBLISHED:]TARGET[/PROTOCOL] or published=P,target=T")
	flags.StringVar(&o.endpointMode, "endpoint-mode", "vip", `Endpoint mode ("vip" or "dnsrr")`)
	flags.StringArrayVar(&o.networks, "network", nil, "Attach the service to a network: NAME or name=NAME[,alias=ALIAS]")
	flags.StringArrayVar(&o.mounts, "mount", nil, mountHelp)
	flags.StringArrayVar(&o.secrets, "secret", nil, "Give the tasks a secret: NAME or source=NAME[,target=PATH][,uid=,gid=,mode=]")
	flags.StringArrayVar(&o.configs, "config", nil, "Give the tasks a config: NAME or source=NAME[,target=PATH][,uid=,gid=,mode=]")
	o.serviceOpts.register(flags)
	return cmd
}

// spec validates the flags and builds the service spec they describe.
func (o *createOpts) spec(flags *pflag.FlagSet, args []string) (swarm.ServiceSpec, error) {
	var spec swarm.ServiceSpec
	if err := o.validate(flags); err != nil {
		return spec, err
	}
	if !slices.Contains(serviceModes, o.mode) {
		return spec, fmt.Errorf("invalid --mode %q: must be %s", o.mode, stack.QuoteList(serviceModes))
	}
	if o.mode == "global" && flags.Changed("replicas") {
		return spec, errors.New("--replicas can only be used with replicated mode")
	}
	labels, err := parseLabels("label", o.labels)
	if err != nil {
		return spec, err
	}
	containerLabels, err := parseLabels("container label", o.containerLabels)
	if err != nil {
		return spec, err
	}
	if err := checkDriverLabel(&o.serviceOpts, flags, containerLabels); err != nil {
		return spec, err
	}
	var env []string
	for _, e := range o.env {
		v, err := parseEnv(e)
		if err != nil {
			return spec, err
		}
		env = setEnv(env, v)
	}
	for _, c := range o.constraints {
		if err := validateConstraint(c); err != nil {
			return spec, err
		}
	}
	var prefs []swarm.PlacementPreference
	for _, p := range o.placementPrefs {
		pref, err := parsePlacementPref(p)
		if err != nil {
			return spec, err
		}
		prefs = append(prefs, pref)
	}

	ports, err := parsePublishes(o.publish)
	if err != nil {
		return spec, err
	}
	if err := validateEndpointMode(o.endpointMode); err != nil {
		return spec, err
	}
	if len(ports) > 0 || flags.Changed("endpoint-mode") {
		spec.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionMode(o.endpointMode), Ports: ports}
	}

	if spec.TaskTemplate.Networks, err = parseNetworks(o.networks); err != nil {
		return spec, err
	}

	secrets, err := parseSecretRefs("secret", o.secrets)
	if err != nil {
		return spec, err
	}
	configs, err := parseConfigRefs("config", o.configs)
	if err != nil {
		return spec, err
	}

	spec.Name = o.name
	spec.Labels = labels
	mounts, err := parseMounts(o.mounts)
	if err != nil {
		return spec, err
	}
	cs := &swarm.ContainerSpec{Image: args[0], Env: env, Labels: containerLabels, Mounts: mounts, Secrets: secrets, Configs: configs}
	if len(args) > 1 {
		cs.Args = args[1:]
	}
	spec.TaskTemplate.ContainerSpec = cs
	if len(o.constraints) > 0 || len(prefs) > 0 {
		spec.TaskTemplate.Placement = &swarm.Placement{Constraints: o.constraints, Preferences: prefs}
	}
	if o.mode == "global" {
		spec.Mode.Global = &swarm.GlobalService{}
	} else {
		spec.Mode.Replicated = &swarm.ReplicatedService{}
	}
	o.apply(flags, &spec)
	return spec, nil
}
