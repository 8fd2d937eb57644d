package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type stackDeployOpts struct {
	files        []string
	prune        bool
	registryAuth bool
	resolveImage string
	detach       bool
	quiet        bool
}

// stackChange is a service a deploy created or updated.
type stackChange struct {
	name, id string
	wo       waitOptions
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
		stack := args[0]
		ctx := cmd.Context()
		project, warnings, err := loadStack(ctx, stack, o.files, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		plan, err := convertStack(stack, project)
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
		changes, err := deployStack(ctx, api, out, cmd.ErrOrStderr(), stack, plan, o.prune)
		if err != nil || o.detach {
			return err
		}
		for _, c := range changes {
			c.wo.quiet, c.wo.timeout = o.quiet, defaultConvergeTimeout
			if !o.quiet {
				fmt.Fprintln(out, c.name)
			}
			if err := waitOnService(ctx, api, out, c.id, c.wo); err != nil {
				return fmt.Errorf("service %s: %w", c.name, err)
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

// deployStack makes the cluster match the plan: external networks are
// checked first (nothing is changed when one is missing), then services
// no longer in the files are pruned (with --prune), the stack's networks
// created if missing, new services created and changed ones updated.
// It returns the services created or updated.
func deployStack(ctx context.Context, api apiClient, out, errOut io.Writer, stack string, plan *stackPlan, prune bool) ([]stackChange, error) {
	netIDs := map[string]string{}
	for _, name := range plan.external {
		res, err := api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("network %q is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed", name)
			}
			return nil, err
		}
		netIDs[name] = res.Network.ID
	}
	secrets, configs := secretAPI(api), configAPI(api)
	if err := checkExternalBlobs(ctx, secrets, plan.secrets); err != nil {
		return nil, err
	}
	if err := checkExternalBlobs(ctx, configs, plan.configs); err != nil {
		return nil, err
	}
	existing, err := stackServices(ctx, api, stack)
	if err != nil {
		return nil, err
	}
	current := map[string]swarm.Service{}
	for _, s := range existing {
		current[s.Spec.Name] = s
	}
	if prune {
		for _, name := range sortedKeys(current) {
			if _, keep := plan.services[name]; keep {
				continue
			}
			fmt.Fprintf(out, "Removing service %s\n", name)
			if _, err := api.ServiceRemove(ctx, current[name].ID, client.ServiceRemoveOptions{}); err != nil {
				return nil, fmt.Errorf("failed to remove service %s: %w", name, err)
			}
		}
	}

	nets, err := stackNetworks(ctx, api, stack)
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		netIDs[n.Name] = n.ID
	}
	for _, name := range sortedKeys(plan.networks) {
		if netIDs[name] != "" {
			continue
		}
		fmt.Fprintf(out, "Creating network %s\n", name)
		res, err := api.NetworkCreate(ctx, name, plan.networks[name])
		if err != nil {
			return nil, fmt.Errorf("failed to create network %s: %w", name, err)
		}
		netIDs[name] = res.ID
	}

	secretIDs, err := deployBlobs(ctx, secrets, out, plan.secrets)
	if err != nil {
		return nil, err
	}
	configIDs, err := deployBlobs(ctx, configs, out, plan.configs)
	if err != nil {
		return nil, err
	}

	var changes []stackChange
	for _, name := range sortedKeys(plan.services) {
		spec := plan.services[name]
		// The managers keep network IDs: give them, so an unchanged
		// service compares equal.
		for i, a := range spec.TaskTemplate.Networks {
			if id := netIDs[a.Target]; id != "" {
				spec.TaskTemplate.Networks[i].Target = id
			}
		}
		// The managers keep the IDs of secrets and configs too.
		if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
			for _, r := range cs.Secrets {
				r.SecretID = secretIDs[r.SecretName]
			}
			for _, r := range cs.Configs {
				r.ConfigID = configIDs[r.ConfigName]
			}
		}
		// The API client tags an untagged image :latest on the way out;
		// compare what the managers will hold.
		if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
			cs.Image = imageWithTag(cs.Image)
		}
		cur, exists := current[name]
		if !exists {
			fmt.Fprintf(out, "Creating service %s\n", name)
			res, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
			if err != nil {
				return nil, fmt.Errorf("failed to create service %s: %w", name, err)
			}
			printWarnings(errOut, res.Warnings)
			changes = append(changes, stackChange{name: name, id: res.ID, wo: waitOptions{op: opCreate}})
			continue
		}
		// As docker: a stack has no --force, keep the service's counter.
		spec.TaskTemplate.ForceUpdate = cur.Spec.TaskTemplate.ForceUpdate
		if sameSpec(spec, cur.Spec) {
			fmt.Fprintf(out, "Service %s is up to date\n", name)
			continue
		}
		fmt.Fprintf(out, "Updating service %s (id: %s)\n", name, cur.ID)
		res, err := api.ServiceUpdate(ctx, cur.ID, client.ServiceUpdateOptions{Version: cur.Version, Spec: spec})
		if err != nil {
			return nil, fmt.Errorf("failed to update service %s: %w", name, err)
		}
		printWarnings(errOut, res.Warnings)
		changes = append(changes, stackChange{name: name, id: cur.ID, wo: waitOptions{op: opUpdate, before: cur.UpdateStatus}})
	}
	return changes, nil
}

// imageWithTag is image as the API client sends it: ":latest" added to
// an image reference without tag or digest (a process driver command is
// left as it is when it is no image reference).
func imageWithTag(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

// sameSpec says whether two service specs have the same wire form.
func sameSpec(a, b swarm.ServiceSpec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func printWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintln(w, s)
	}
}
