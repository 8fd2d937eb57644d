package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// A stack is docker's client-side grouping: the services and networks
// that carry the label com.docker.stack.namespace=STACK. These commands
// build it from compose files and list or remove it, as `docker stack`
// does.

func newStackCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stack",
		Short: "Manage stacks (applications from compose files)",
		Args:  groupArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(
		newStackDeployCommand(env),
		newStackLsCommand(env),
		newStackPsCommand(env),
		newStackRmCommand(env),
		newStackServicesCommand(env),
	)
	return cmd
}

// stackFilter selects the objects of one stack.
func stackFilter(stack string) client.Filters {
	return client.Filters{}.Add("label", stackNamespaceLabel+"="+stack)
}

// stackServices lists the services of a stack.
func stackServices(ctx context.Context, api apiClient, stack string) ([]swarm.Service, error) {
	res, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: stackFilter(stack)})
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}

// stackNetworks lists the networks of a stack.
func stackNetworks(ctx context.Context, api apiClient, stack string) ([]network.Summary, error) {
	res, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: stackFilter(stack)})
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}

// stackQuery is what stack services and stack ps start with: their
// filters, a client, and the stack's services (none is an error).
func stackQuery(ctx context.Context, env *cliEnv, filters []string, stack string) (apiClient, client.Filters, []swarm.Service, error) {
	f, err := parseFilters(filters)
	if err != nil {
		return nil, nil, nil, err
	}
	api, err := env.client()
	if err != nil {
		return nil, nil, nil, err
	}
	services, err := stackServices(ctx, api, stack)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(services) == 0 {
		return nil, nil, nil, nothingFound(stack)
	}
	return api, f, services, nil
}

func nothingFound(stack string) error { return fmt.Errorf("nothing found in stack: %s", stack) }

const defaultStackTable = "table {{.Name}}\t{{.Services}}"

var stackListHeader = map[string]string{"Name": "NAME", "Services": "SERVICES"}

// stackRow is one row of `stack ls`.
type stackRow struct {
	name     string
	services int
}

func (r *stackRow) Name() string     { return r.name }
func (r *stackRow) Services() string { return fmt.Sprint(r.services) }
func (r *stackRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"Name": r.Name(), "Services": r.Services()})
}

func newStackLsCommand(env *cliEnv) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List stacks",
		Args:    noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		res, err := api.ServiceList(cmd.Context(), client.ServiceListOptions{Filters: client.Filters{}.Add("label", stackNamespaceLabel)})
		if err != nil {
			return err
		}
		count := map[string]int{}
		for _, s := range res.Items {
			if ns, ok := s.Spec.Labels[stackNamespaceLabel]; ok {
				count[ns]++
			}
		}
		var rows []*stackRow
		for _, name := range sortedKeys(count) {
			rows = append(rows, &stackRow{name: name, services: count[name]})
		}
		sort.SliceStable(rows, func(i, j int) bool { return naturalLess(rows[i].name, rows[j].name) })
		lf := resolveListFormat(format, false, defaultStackTable, defaultStackTable, defaultStackTable)
		return writeList(cmd.OutOrStdout(), lf, stackListHeader, rows)
	})
	cmd.Flags().StringVar(&format, "format", "", listFormatHelp+"Fields: .Name .Services")
	return cmd
}

func newStackServicesCommand(env *cliEnv) *cobra.Command {
	var (
		quiet   bool
		format  string
		filters []string
	)
	cmd := &cobra.Command{
		Use:   "services [OPTIONS] STACK",
		Short: "List the services in the stack",
		Args:  exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		api, f, _, err := stackQuery(ctx, env, filters, args[0])
		if err != nil {
			return err
		}
		f.Add("label", stackNamespaceLabel+"="+args[0])
		return listServices(ctx, api, cmd.OutOrStdout(), f, format, quiet)
	})
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	flags.StringVar(&format, "format", "", listFormatHelp+"Fields: .ID .Name .Mode .Replicas .Image .Ports")
	flags.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (id, name, label, mode)")
	return cmd
}

func newStackPsCommand(env *cliEnv) *cobra.Command {
	var (
		o       psOptions
		filters []string
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] STACK",
		Short: "List the tasks in the stack",
		Args:  exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		api, f, services, err := stackQuery(ctx, env, filters, args[0])
		if err != nil {
			return err
		}
		return listTasks(ctx, api, cmd.OutOrStdout(), services, f, o)
	})
	flags := cmd.Flags()
	flags.BoolVarP(&o.quiet, "quiet", "q", false, "Only display task IDs")
	flags.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate output")
	flags.BoolVar(&o.noResolve, "no-resolve", false, "Do not map IDs to Names")
	flags.StringVar(&o.format, "format", "", listFormatHelp+"Fields: .ID .Name .Image .Node .DesiredState .CurrentState .Error .Ports")
	flags.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (desired-state=running|shutdown|accepted, id, name, node)")
	return cmd
}

func newStackRmCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rm STACK [STACK...]",
		Aliases: []string{"remove", "down"},
		Short:   "Remove one or more stacks",
		Args:    minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		var errs []error
		for _, stack := range args {
			if err := removeStack(cmd.Context(), api, cmd.OutOrStdout(), cmd.ErrOrStderr(), stack); err != nil {
				if client.IsErrConnectionFailed(err) {
					return err
				}
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	return cmd
}

// stackNetworkWait is how long `stack rm` waits for the tasks of the
// services it removed to end before it gives up on a network they hold.
var stackNetworkWait = 30 * time.Second

// removeStackNetwork removes a network of a stack. The managers refuse a
// network still held by a task, and the tasks of the services just
// removed take a moment to stop: when wait is set, it tries again until
// they have.
func removeStackNetwork(ctx context.Context, api apiClient, id string, wait bool) error {
	deadline := time.Now().Add(stackNetworkWait)
	for {
		_, err := api.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
		if err == nil || !wait || !strings.Contains(err.Error(), "in use by task") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// removeStack removes the services of a stack, then its secrets and
// configs, then its networks, as docker does.
func removeStack(ctx context.Context, api apiClient, out, errOut io.Writer, stack string) error {
	services, err := stackServices(ctx, api, stack)
	if err != nil {
		return err
	}
	networks, err := stackNetworks(ctx, api, stack)
	if err != nil {
		return err
	}
	secrets, err := api.SecretList(ctx, client.SecretListOptions{Filters: stackFilter(stack)})
	if err != nil {
		return err
	}
	configs, err := api.ConfigList(ctx, client.ConfigListOptions{Filters: stackFilter(stack)})
	if err != nil {
		return err
	}
	if len(services) == 0 && len(networks) == 0 && len(secrets.Items) == 0 && len(configs.Items) == 0 {
		fmt.Fprintf(errOut, "Nothing found in stack: %s\n", stack)
		return nil
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Spec.Name < services[j].Spec.Name })
	sort.Slice(networks, func(i, j int) bool { return networks[i].Name < networks[j].Name })
	var failed []string
	for _, s := range services {
		fmt.Fprintf(out, "Removing service %s\n", s.Spec.Name)
		if _, err := api.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("service %s: %v", s.Spec.Name, err))
		}
	}
	sort.Slice(secrets.Items, func(i, j int) bool { return secrets.Items[i].Spec.Name < secrets.Items[j].Spec.Name })
	for _, x := range secrets.Items {
		fmt.Fprintf(out, "Removing secret %s\n", x.Spec.Name)
		if _, err := api.SecretRemove(ctx, x.ID, client.SecretRemoveOptions{}); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("secret %s: %v", x.Spec.Name, err))
		}
	}
	sort.Slice(configs.Items, func(i, j int) bool { return configs.Items[i].Spec.Name < configs.Items[j].Spec.Name })
	for _, x := range configs.Items {
		fmt.Fprintf(out, "Removing config %s\n", x.Spec.Name)
		if _, err := api.ConfigRemove(ctx, x.ID, client.ConfigRemoveOptions{}); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("config %s: %v", x.Spec.Name, err))
		}
	}
	for _, n := range networks {
		fmt.Fprintf(out, "Removing network %s\n", n.Name)
		if err := removeStackNetwork(ctx, api, n.ID, len(services) > 0); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("network %s: %v", n.Name, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed to remove some resources from stack %s:\n%s", stack, strings.Join(failed, "\n"))
	}
	return nil
}
