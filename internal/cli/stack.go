package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/internal/stack"
)

// The stack commands: flags and printing; loading, converting, deploying
// and removing a stack is package stack's.

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

// stackQuery is what stack services and stack ps start with: their
// filters, a client, and the stack's services (none is an error).
func stackQuery(ctx context.Context, env *cliEnv, filters []string, name string) (apiClient, client.Filters, []swarm.Service, error) {
	f, err := parseFilters(filters)
	if err != nil {
		return nil, nil, nil, err
	}
	api, err := env.client()
	if err != nil {
		return nil, nil, nil, err
	}
	services, err := stack.Services(ctx, api, name)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(services) == 0 {
		return nil, nil, nil, nothingFound(name)
	}
	return api, f, services, nil
}

func nothingFound(name string) error { return fmt.Errorf("nothing found in stack: %s", name) }

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
		res, err := api.ServiceList(cmd.Context(), client.ServiceListOptions{Filters: client.Filters{}.Add("label", stack.NamespaceLabel)})
		if err != nil {
			return err
		}
		count := map[string]int{}
		for _, s := range res.Items {
			if ns, ok := s.Spec.Labels[stack.NamespaceLabel]; ok {
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
		f.Add("label", stack.NamespaceLabel+"="+args[0])
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
		for _, name := range args {
			if err := stack.Remove(cmd.Context(), api, cmd.OutOrStdout(), cmd.ErrOrStderr(), name); err != nil {
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
