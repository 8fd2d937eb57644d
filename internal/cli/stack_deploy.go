package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/internal/stack"
)

type stackDeployOpts struct {
	files        []string
	prune        bool
	registryAuth bool
	resolveImage string
	detach       bool
	quiet        bool
}

func newStackDeployCommand(env *cliEnv) *cobra.Command {
	var o stackDeployOpts
	cmd := &cobra.Command{
		Use:     "deploy [OPTIONS] STACK",
		Aliases: []string{"up"},
		Short:   "Deploy a new stack or update an existing stack",
		Long: "Deploy a new stack or update an existing stack from compose files.\n\n" +
			"The files given with -c are merged in order; ${VAR} is taken from the environment, then from\n" +
			"the .env file next to the first file. A service is named STACK_SERVICE, a network STACK_NETWORK.\n" +
			"A second deploy updates only the services whose spec changed; --prune removes the services of\n" +
			"the stack that are no longer in the files. Keys flotilla does not support are named in a warning.\n" +
			"x-flotilla-driver: process (a service-level key) runs a service's tasks with the process driver.",
		Args: exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		switch o.resolveImage {
		case "always", "changed", "never":
		default:
			return fmt.Errorf("invalid --resolve-image %q: must be always, changed or never", o.resolveImage)
		}
		name := args[0]
		ctx := cmd.Context()
		project, warnings, err := stack.Load(ctx, name, o.files, nil, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		plan, err := stack.Convert(name, project)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), w)
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		changes, err := stack.Deploy(ctx, api, out, cmd.ErrOrStderr(), name, plan, o.prune)
		if err != nil || o.detach {
			return err
		}
		for _, c := range changes {
			wo := waitOptions{op: opCreate, quiet: o.quiet, timeout: defaultConvergeTimeout}
			if c.Updated {
				wo.op, wo.before = opUpdate, c.Before
			}
			if !o.quiet {
				fmt.Fprintln(out, c.Name)
			}
			if err := waitOnService(ctx, api, out, c.ID, wo); err != nil {
				return fmt.Errorf("service %s: %w", c.Name, err)
			}
		}
		return nil
	})
	flags := cmd.Flags()
	flags.StringArrayVarP(&o.files, "compose-file", "c", nil, "Path to a Compose file (repeatable: later files are merged over earlier ones)")
	flags.BoolVar(&o.prune, "prune", false, "Prune services that are no longer referenced")
	flags.BoolVarP(&o.detach, "detach", "d", true, "Exit immediately instead of waiting for the stack services to converge")
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output")
	flags.BoolVar(&o.registryAuth, "with-registry-auth", false, "Send registry authentication details to Swarm agents (accepted; flotilla's nodes use their own credentials)")
	flags.StringVar(&o.resolveImage, "resolve-image", "always", `Query the registry to resolve image digest and supported platforms ("always", "changed", "never"); flotilla does not resolve digests`)
	return cmd
}
