package cli

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// updateOpts are the flags of `service update`.
type updateOpts struct {
	serviceOpts
	image                               string
	args                                string
	envAdd, envRm                       []string
	labelAdd, labelRm                   []string
	containerLabelAdd, containerLabelRm []string
	constraintAdd, constraintRm         []string
	placementPrefAdd, placementPrefRm   []string
	publishAdd, publishRm               []string
	networkAdd, networkRm               []string
	mountAdd, mountRm                   []string
	secretAdd, secretRm                 []string
	configAdd, configRm                 []string
	endpointMode                        string
	force, rollback                     bool

	// Parsed by validate.
	parsedArgs              []string
	env                     []string
	labels, containerLabels map[string]string
	prefsAdd, prefsRm       []swarm.PlacementPreference
	portsAdd                []swarm.PortConfig
	netsAdd                 []swarm.NetworkAttachmentConfig
	mountsAdd               []mount.Mount
	secretsAdd              []*swarm.SecretReference
	configsAdd              []*swarm.ConfigReference
	netIDs                  map[string]string // network names given → IDs, read from the API
}

func newServiceUpdateCommand(env *cliEnv) *cobra.Command {
	o := &updateOpts{}
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] SERVICE",
		Short: "Update a service",
		Long: "Update a service: the flags given change its spec, the others keep their values.\n" +
			"Without --detach, the command shows the service's progress until it converges.",
		Args: exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		flags := cmd.Flags()
		if err := o.validateUpdate(flags, cmd.LocalFlags()); err != nil {
			return err
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		ref := args[0]
		res, err := api.ServiceInspect(ctx, ref, client.ServiceInspectOptions{})
		if err != nil {
			return serviceNotFound(err, ref)
		}
		svc := res.Service
		uo := client.ServiceUpdateOptions{Version: svc.Version, Spec: svc.Spec}
		op := opUpdate
		if o.rollback {
			// Server-side rollback to the previous spec, as docker does.
			uo.Rollback, op = "previous", opRollback
		} else {
			if anyChanged(flags, "network-add", "network-rm") {
				o.netIDs = networkIDs(ctx, api, append(slices.Clone(o.networkRm), targets(o.netsAdd)...))
			}
			if err := o.edit(flags, &uo.Spec); err != nil {
				return err
			}
		}
		ur, err := api.ServiceUpdate(ctx, svc.ID, uo)
		if err != nil {
			return err
		}
		for _, w := range ur.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), w)
		}
		fmt.Fprintln(out, ref)
		if o.detach {
			return nil
		}
		return waitOnService(ctx, api, out, svc.ID, waitOptions{op: op, before: svc.UpdateStatus, quiet: o.quiet, timeout: o.timeout})
	})
	flags := cmd.Flags()
	flags.StringVar(&o.image, "image", "", "Service image (or command, with the process driver)")
	flags.StringVar(&o.args, "args", "", `Service command args (shell words: --args "sleep 'a b'")`)
	flags.StringArrayVar(&o.envAdd, "env-add", nil, "Add or update an environment variable (KEY=VALUE)")
	flags.StringArrayVar(&o.envRm, "env-rm", nil, "Remove an environment variable")
	flags.StringArrayVar(&o.labelAdd, "label-add", nil, "Add or update a service label (key=value)")
	flags.StringArrayVar(&o.labelRm, "label-rm", nil, "Remove a service label by its key")
	flags.StringArrayVar(&o.containerLabelAdd, "container-label-add", nil, "Add or update a container label (key=value)")
	flags.StringArrayVar(&o.containerLabelRm, "container-label-rm", nil, "Remove a container label by its key")
	flags.StringArrayVar(&o.constraintAdd, "constraint-add", nil, "Add or update a placement constraint")
	flags.StringArrayVar(&o.constraintRm, "constraint-rm", nil, "Remove a placement constraint")
	flags.StringArrayVar(&o.placementPrefAdd, "placement-pref-add", nil, "Add a placement preference (spread=node.labels.LABEL)")
	flags.StringArrayVar(&o.placementPrefRm, "placement-pref-rm", nil, "Remove a placement preference")
	flags.StringArrayVar(&o.publishAdd, "publish-add", nil, "Add or update a published port: [PUBLISHED:]TARGET[/PROTOCOL] or published=P,target=T")
	flags.StringArrayVar(&o.publishRm, "publish-rm", nil, "Remove a published port by its target port (80 or 80/udp)")
	flags.StringVar(&o.endpointMode, "endpoint-mode", "", `Endpoint mode ("vip" or "dnsrr")`)
	flags.StringArrayVar(&o.networkAdd, "network-add", nil, "Attach the service to a network: NAME or name=NAME[,alias=ALIAS]")
	flags.StringArrayVar(&o.networkRm, "network-rm", nil, "Detach the service from a network")
	flags.StringArrayVar(&o.mountAdd, "mount-add", nil, "Add or update a mount on a target: "+strings.TrimPrefix(mountHelp, "Attach a filesystem mount to the service: "))
	flags.StringArrayVar(&o.mountRm, "mount-rm", nil, "Remove a mount by its target path")
	flags.StringArrayVar(&o.secretAdd, "secret-add", nil, "Add a secret: NAME or source=NAME[,target=PATH][,uid=,gid=,mode=]")
	flags.StringArrayVar(&o.secretRm, "secret-rm", nil, "Remove a secret by its name")
	flags.StringArrayVar(&o.configAdd, "config-add", nil, "Add a config: NAME or source=NAME[,target=PATH][,uid=,gid=,mode=]")
	flags.StringArrayVar(&o.configRm, "config-rm", nil, "Remove a config by its name")
	flags.BoolVar(&o.force, "force", false, "Force update even if no changes require it")
	flags.BoolVar(&o.rollback, "rollback", false, "Rollback to previous specification")
	o.serviceOpts.register(flags)
	return cmd
}

// validateUpdate checks every flag before anything is sent.
func (o *updateOpts) validateUpdate(flags, local *pflag.FlagSet) error {
	if o.rollback {
		other := false
		local.VisitAll(func(f *pflag.Flag) {
			switch f.Name {
			case "rollback", "detach", "quiet", "timeout":
			default:
				other = other || f.Changed
			}
		})
		if other {
			return errors.New("other flags may not be combined with --rollback")
		}
	}
	if err := o.validate(flags); err != nil {
		return err
	}
	var err error
	if flags.Changed("args") {
		if o.parsedArgs, err = splitArgs(o.args); err != nil {
			return err
		}
	}
	o.env = nil
	for _, e := range o.envAdd {
		v, err := parseEnv(e)
		if err != nil {
			return err
		}
		o.env = setEnv(o.env, v)
	}
	if o.labels, err = parseLabels("label", o.labelAdd); err != nil {
		return err
	}
	if o.containerLabels, err = parseLabels("container label", o.containerLabelAdd); err != nil {
		return err
	}
	if err := checkDriverLabel(&o.serviceOpts, flags, o.containerLabels); err != nil {
		return err
	}
	for _, c := range o.constraintAdd {
		if err := validateConstraint(c); err != nil {
			return err
		}
	}
	if o.portsAdd, err = parsePublishes(o.publishAdd); err != nil {
		return err
	}
	if o.netsAdd, err = parseNetworks(o.networkAdd); err != nil {
		return err
	}
	if o.mountsAdd, err = parseMounts(o.mountAdd); err != nil {
		return err
	}
	if o.secretsAdd, err = parseSecretRefs("secret-add", o.secretAdd); err != nil {
		return err
	}
	if o.configsAdd, err = parseConfigRefs("config-add", o.configAdd); err != nil {
		return err
	}
	if flags.Changed("endpoint-mode") {
		if err := validateEndpointMode(o.endpointMode); err != nil {
			return err
		}
	}
	o.prefsAdd, o.prefsRm = nil, nil
	for _, p := range o.placementPrefAdd {
		pref, err := parsePlacementPref(p)
		if err != nil {
			return err
		}
		o.prefsAdd = append(o.prefsAdd, pref)
	}
	for _, p := range o.placementPrefRm {
		pref, err := parsePlacementPref(p)
		if err != nil {
			return err
		}
		o.prefsRm = append(o.prefsRm, pref)
	}
	return nil
}

// edit applies the flags to a service's spec. Removals happen before
// additions, as in docker.
func (o *updateOpts) edit(flags *pflag.FlagSet, spec *swarm.ServiceSpec) error {
	if flags.Changed("replicas") && spec.Mode.Replicated == nil {
		return errors.New("--replicas can only be used with replicated mode")
	}
	tt := &spec.TaskTemplate
	if tt.ContainerSpec == nil {
		tt.ContainerSpec = &swarm.ContainerSpec{}
	}
	cs := tt.ContainerSpec
	if flags.Changed("image") {
		cs.Image = o.image
	}
	if flags.Changed("args") {
		cs.Args = o.parsedArgs
	}
	if len(o.envRm) > 0 {
		cs.Env = slices.DeleteFunc(cs.Env, func(e string) bool {
			return slices.ContainsFunc(o.envRm, func(rm string) bool { return envKey(rm) == envKey(e) })
		})
	}
	cs.Env = setEnv(cs.Env, o.env...)
	editLabels(&spec.Labels, o.labelRm, o.labels)
	editLabels(&cs.Labels, o.containerLabelRm, o.containerLabels)
	if anyChanged(flags, "constraint-add", "constraint-rm", "placement-pref-add", "placement-pref-rm") {
		if tt.Placement == nil {
			tt.Placement = &swarm.Placement{}
		}
		p := tt.Placement
		p.Constraints = slices.DeleteFunc(p.Constraints, func(c string) bool { return slices.Contains(o.constraintRm, c) })
		for _, c := range o.constraintAdd {
			if !slices.Contains(p.Constraints, c) {
				p.Constraints = append(p.Constraints, c)
			}
		}
		p.Preferences = slices.DeleteFunc(p.Preferences, func(pref swarm.PlacementPreference) bool {
			return slices.ContainsFunc(o.prefsRm, func(rm swarm.PlacementPreference) bool {
				return placementPrefString(rm) == placementPrefString(pref)
			})
		})
		p.Preferences = append(p.Preferences, o.prefsAdd...)
	}
	if anyChanged(flags, "publish-add", "publish-rm", "endpoint-mode") {
		if err := editPorts(&spec.EndpointSpec, o.publishRm, o.portsAdd); err != nil {
			return err
		}
		if flags.Changed("endpoint-mode") {
			spec.EndpointSpec.Mode = swarm.ResolutionMode(o.endpointMode)
		}
	}
	if anyChanged(flags, "network-add", "network-rm") {
		if err := editNetworks(&tt.Networks, o.networkRm, o.netsAdd, o.netIDs); err != nil {
			return err
		}
	}
	if anyChanged(flags, "mount-add", "mount-rm") {
		if err := editMounts(&cs.Mounts, o.mountRm, o.mountsAdd); err != nil {
			return err
		}
	}
	if err := editRefs(&cs.Secrets, o.secretRm, o.secretsAdd, secretNames, "secret"); err != nil {
		return err
	}
	if err := editRefs(&cs.Configs, o.configRm, o.configsAdd, configNames, "config"); err != nil {
		return err
	}
	o.apply(flags, spec)
	if o.force {
		tt.ForceUpdate++
	}
	return nil
}

func editLabels(m *map[string]string, rm []string, add map[string]string) {
	for _, k := range rm {
		delete(*m, k)
	}
	if len(add) == 0 {
		return
	}
	if *m == nil {
		*m = map[string]string{}
	}
	for k, v := range add {
		(*m)[k] = v
	}
}

func newServiceRollbackCommand(env *cliEnv) *cobra.Command {
	var (
		detach, quiet bool
		timeout       = defaultConvergeTimeout
	)
	cmd := &cobra.Command{
		Use:   "rollback [OPTIONS] SERVICE",
		Short: "Revert changes to a service's configuration",
		Args:  exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		if timeout < 0 {
			return fmt.Errorf("invalid --timeout %s: must not be negative", timeout)
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out, ref := cmd.Context(), cmd.OutOrStdout(), args[0]
		res, err := api.ServiceInspect(ctx, ref, client.ServiceInspectOptions{})
		if err != nil {
			return serviceNotFound(err, ref)
		}
		svc := res.Service
		ur, err := api.ServiceUpdate(ctx, svc.ID, client.ServiceUpdateOptions{
			Version: svc.Version, Spec: svc.Spec, Rollback: "previous",
		})
		if err != nil {
			return err
		}
		for _, w := range ur.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), w)
		}
		fmt.Fprintln(out, ref)
		if detach {
			return nil
		}
		return waitOnService(ctx, api, out, svc.ID, waitOptions{op: opRollback, before: svc.UpdateStatus, quiet: quiet, timeout: timeout})
	})
	flags := cmd.Flags()
	flags.BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
	flags.BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output")
	flags.DurationVar(&timeout, "timeout", defaultConvergeTimeout, "Without --detach, give up when the service makes no progress towards convergence for this long (0: wait forever)")
	return cmd
}

// scaleArgs checks SERVICE=REPLICAS arguments.
func scaleArgs(cmd *cobra.Command, args []string) error {
	if err := minArgs(1)(cmd, args); err != nil {
		return err
	}
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); !ok || k == "" || v == "" {
			return fail(cmd, fmt.Sprintf("invalid scale specifier '%s'.\n%s", a, usageHint(cmd)))
		}
	}
	return nil
}

func newServiceScaleCommand(env *cliEnv) *cobra.Command {
	var (
		detach, quiet bool
		timeout       = defaultConvergeTimeout
	)
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]",
		Short: "Scale one or multiple replicated services",
		Args:  scaleArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		if timeout < 0 {
			return fmt.Errorf("invalid --timeout %s: must not be negative", timeout)
		}
		// Every count is checked before anything is sent.
		counts := make([]uint64, len(args))
		for i, a := range args {
			ref, v, _ := strings.Cut(a, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err != nil:
				return fmt.Errorf("%s: invalid replicas value %s: must be a whole number", ref, v)
			case n < 0:
				return fmt.Errorf("%s: invalid replicas value %s: must be 0 or more", ref, v)
			}
			counts[i] = uint64(n)
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		type scaled struct {
			ref, id string
			before  *swarm.UpdateStatus
		}
		var (
			errs []error
			done []scaled
		)
		for i, a := range args {
			ref, _, _ := strings.Cut(a, "=")
			res, err := api.ServiceInspect(ctx, ref, client.ServiceInspectOptions{})
			if err != nil {
				if client.IsErrConnectionFailed(err) {
					return err
				}
				errs = append(errs, fmt.Errorf("%s: %w", ref, serviceNotFound(err, ref)))
				continue
			}
			svc := res.Service
			if svc.Spec.Mode.Replicated == nil {
				errs = append(errs, fmt.Errorf("%s: scale can only be used with replicated mode", ref))
				continue
			}
			n := counts[i]
			svc.Spec.Mode.Replicated.Replicas = &n
			ur, err := api.ServiceUpdate(ctx, svc.ID, client.ServiceUpdateOptions{Version: svc.Version, Spec: svc.Spec})
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ref, err))
				continue
			}
			for _, w := range ur.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w)
			}
			fmt.Fprintf(out, "%s scaled to %d\n", ref, n)
			done = append(done, scaled{ref: ref, id: svc.ID, before: svc.UpdateStatus})
		}
		if !detach {
			for _, s := range done {
				if err := waitOnService(ctx, api, out, s.id, waitOptions{op: opUpdate, before: s.before, quiet: quiet, timeout: timeout}); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", s.ref, err))
				}
			}
		}
		return errors.Join(errs...)
	})
	flags := cmd.Flags()
	flags.BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for the services to converge")
	flags.BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output")
	flags.DurationVar(&timeout, "timeout", defaultConvergeTimeout, "Without --detach, give up when a service makes no progress towards convergence for this long (0: wait forever)")
	return cmd
}
