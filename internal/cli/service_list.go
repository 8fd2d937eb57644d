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

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/agent"
)

const (
	defaultServiceTable = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"
	rawServiceFormat    = `id: {{.ID}}\nname: {{.Name}}\nmode: {{.Mode}}\nreplicas: {{.Replicas}}\nimage: {{.Image}}\nports: {{.Ports}}\n`
	rawServiceQuiet     = `id: {{.ID}}`

	defaultTaskTable = "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}"
	rawTaskFormat    = `id: {{.ID}}\nname: {{.Name}}\nimage: {{.Image}}\nnode: {{.Node}}\ndesired_state: {{.DesiredState}}\ncurrent_state: {{.CurrentState}}\nerror: {{.Error}}\nports: {{.Ports}}\n`
	rawTaskQuiet     = `id: {{.ID}}`

	// maxTaskErrLength is the width of the ERROR column of `service ps`.
	maxTaskErrLength = 30
)

var serviceListHeader = map[string]string{
	"ID":       "ID",
	"Name":     "NAME",
	"Mode":     "MODE",
	"Replicas": "REPLICAS",
	"Image":    "IMAGE",
	"Ports":    "PORTS",
}

var taskListHeader = map[string]string{
	"ID":           "ID",
	"Name":         "NAME",
	"Image":        "IMAGE",
	"Node":         "NODE",
	"DesiredState": "DESIRED STATE",
	"CurrentState": "CURRENT STATE",
	"Error":        "ERROR",
	"Ports":        "PORTS",
}

const listFormatHelp = "Format output using a custom template:\n" +
	"'table':            Print output in table format with column headers (default)\n" +
	"'table TEMPLATE':   Print output in table format using the given Go template\n" +
	"'json':             Print in JSON format\n" +
	"'TEMPLATE':         Print output using the given Go template\n"

// serviceRow is what a `service ls --format` template sees.
type serviceRow struct{ s swarm.Service }

func (r *serviceRow) ID() string   { return truncID(r.s.ID) }
func (r *serviceRow) Name() string { return r.s.Spec.Name }

func (r *serviceRow) Mode() string {
	switch {
	case r.s.Spec.Mode.Global != nil:
		return "global"
	case r.s.Spec.Mode.Replicated != nil:
		return "replicated"
	case r.s.Spec.Mode.ReplicatedJob != nil:
		return "replicated job"
	case r.s.Spec.Mode.GlobalJob != nil:
		return "global job"
	}
	return ""
}

// Replicas is "running/desired", for global services too.
func (r *serviceRow) Replicas() string {
	var running, desired uint64
	if st := r.s.ServiceStatus; st != nil {
		running, desired = st.RunningTasks, st.DesiredTasks
	}
	if p := r.s.Spec.TaskTemplate.Placement; r.s.Spec.Mode.Replicated != nil && p != nil && p.MaxReplicas > 0 {
		return fmt.Sprintf("%d/%d (max %d per node)", running, desired, p.MaxReplicas)
	}
	return fmt.Sprintf("%d/%d", running, desired)
}

func (r *serviceRow) Image() string {
	if cs := r.s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		return displayImage(cs.Image)
	}
	return ""
}

func (r *serviceRow) Ports() string { return formatPorts(r.s.Endpoint.Ports, true) }

func (r *serviceRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"ID": r.ID(), "Name": r.Name(), "Mode": r.Mode(), "Replicas": r.Replicas(), "Image": r.Image(), "Ports": r.Ports(),
	})
}

func newServiceLsCommand(env *cliEnv) *cobra.Command {
	var (
		quiet   bool
		format  string
		filters []string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List services",
		Args:    noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		f, err := parseFilters(filters)
		if err != nil {
			return err
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		return listServices(cmd.Context(), api, cmd.OutOrStdout(), f, format, quiet)
	})
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	flags.StringVar(&format, "format", "", listFormatHelp+"Fields: .ID .Name .Mode .Replicas .Image .Ports")
	flags.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (id, name, label, mode)")
	return cmd
}

// listServices prints the services f selects, as `service ls` does.
func listServices(ctx context.Context, api apiClient, out io.Writer, f client.Filters, format string, quiet bool) error {
	res, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: f, Status: !quiet})
	if err != nil {
		return err
	}
	services := res.Items
	if !quiet {
		if err := fillServiceStatus(ctx, api, services); err != nil {
			return err
		}
	}
	sort.SliceStable(services, func(i, j int) bool { return naturalLess(services[i].Spec.Name, services[j].Spec.Name) })
	rows := make([]*serviceRow, len(services))
	for i := range services {
		rows[i] = &serviceRow{s: services[i]}
	}
	lf := resolveListFormat(format, quiet, defaultServiceTable, rawServiceFormat, rawServiceQuiet)
	return writeList(out, lf, serviceListHeader, rows)
}

// fillServiceStatus counts running and desired tasks for services the
// daemon sent without a ServiceStatus.
func fillServiceStatus(ctx context.Context, api apiClient, services []swarm.Service) error {
	f := client.Filters{}
	for _, s := range services {
		if s.ServiceStatus == nil {
			f.Add("service", s.ID)
		}
	}
	if len(f) == 0 {
		return nil
	}
	tl, err := api.TaskList(ctx, client.TaskListOptions{Filters: f})
	if err != nil {
		return err
	}
	nl, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return err
	}
	up := map[string]bool{}
	for _, n := range nl.Items {
		if n.Status.State != swarm.NodeStateDown {
			up[n.ID] = true
		}
	}
	status := map[string]*swarm.ServiceStatus{}
	for i := range services {
		s := &services[i]
		if s.ServiceStatus != nil {
			continue
		}
		s.ServiceStatus = &swarm.ServiceStatus{}
		status[s.ID] = s.ServiceStatus
	}
	for _, t := range tl.Items {
		st := status[t.ServiceID]
		if st == nil {
			continue
		}
		if t.DesiredState == swarm.TaskStateRunning {
			st.DesiredTasks++
		}
		if up[t.NodeID] && t.Status.State == swarm.TaskStateRunning {
			st.RunningTasks++
		}
	}
	for i := range services {
		s := &services[i]
		if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil && status[s.ID] != nil {
			s.ServiceStatus.DesiredTasks = *r.Replicas
		}
	}
	return nil
}

// taskRow is what a `service ps --format` template sees.
type taskRow struct {
	t     swarm.Task
	name  string
	node  string
	trunc bool
}

func (r *taskRow) ID() string {
	if r.trunc {
		return truncID(r.t.ID)
	}
	return r.t.ID
}

func (r *taskRow) Name() string { return r.name }

func (r *taskRow) Image() string {
	cs := r.t.Spec.ContainerSpec
	if cs == nil {
		return ""
	}
	if r.trunc {
		return displayImage(cs.Image)
	}
	return cs.Image
}

func (r *taskRow) Node() string         { return r.node }
func (r *taskRow) DesiredState() string { return capitalize(string(r.t.DesiredState)) }

// CurrentState is the state and how long ago it was reached, docker
// style: "Running 5 minutes ago", with the task's health when it has a
// check: "Starting (health: starting)", "Running (healthy)", "Failed
// (unhealthy)".
func (r *taskRow) CurrentState() string {
	st := capitalize(string(r.t.Status.State))
	switch {
	case r.t.Status.Message == agent.MessageHealthy && r.t.Status.State == swarm.TaskStateRunning:
		st += " (healthy)"
	case r.t.Status.Message == agent.MessageUnhealthy:
		st += " (unhealthy)"
	case r.t.Status.State == swarm.TaskStateStarting && r.t.Spec.ContainerSpec != nil && hasHealthCmd(r.t.Spec.ContainerSpec.Healthcheck):
		st += " (health: starting)"
	}
	return fmt.Sprintf("%s %s ago", st, strings.ToLower(units.HumanDuration(time.Since(r.t.Status.Timestamp))))
}

func hasHealthCmd(h *container.HealthConfig) bool {
	return h != nil && len(h.Test) > 0 && (h.Test[0] == "CMD" || h.Test[0] == "CMD-SHELL")
}

func (r *taskRow) Error() string {
	e := r.t.Status.Err
	if r.trunc {
		e = ellipsis(e, maxTaskErrLength)
	}
	if e != "" {
		e = `"` + e + `"`
	}
	return e
}

func (r *taskRow) Ports() string {
	var out []string
	for _, p := range r.t.Status.PortStatus.Ports {
		out = append(out, fmt.Sprintf("*:%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
	}
	return strings.Join(out, ",")
}

func (r *taskRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"ID": r.ID(), "Name": r.Name(), "Image": r.Image(), "Node": r.Node(),
		"DesiredState": r.DesiredState(), "CurrentState": r.CurrentState(), "Error": r.Error(), "Ports": r.Ports(),
	})
}

func newServicePsCommand(env *cliEnv) *cobra.Command {
	var (
		quiet, noTrunc, noResolve bool
		format                    string
		filters                   []string
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] SERVICE [SERVICE...]",
		Short: "List the tasks of one or more services",
		Args:  minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		f, err := parseFilters(filters)
		if err != nil {
			return err
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		services, notFound, err := resolveServices(ctx, api, args)
		if err != nil {
			return err
		}
		o := psOptions{quiet: quiet, noTrunc: noTrunc, noResolve: noResolve, format: format}
		if err := listTasks(ctx, api, cmd.OutOrStdout(), services, f, o); err != nil {
			return err
		}
		if len(notFound) > 0 {
			return errors.New(strings.Join(notFound, "\n"))
		}
		return nil
	})
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display task IDs")
	flags.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	flags.BoolVar(&noResolve, "no-resolve", false, "Do not map IDs to Names")
	flags.StringVar(&format, "format", "", listFormatHelp+"Fields: .ID .Name .Image .Node .DesiredState .CurrentState .Error .Ports")
	flags.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (desired-state=running|shutdown|accepted, id, name, node)")
	return cmd
}

// psOptions are the display flags of `service ps` and `stack ps`.
type psOptions struct {
	quiet, noTrunc, noResolve bool
	format                    string
}

// listTasks prints the tasks of services that f selects, as `service ps`
// does.
func listTasks(ctx context.Context, api apiClient, out io.Writer, services []swarm.Service, f client.Filters, o psOptions) error {
	names := map[string]string{}
	for _, s := range services {
		f.Add("service", s.ID)
		names[s.ID] = s.Spec.Name
	}
	var nodes map[string]swarm.Node
	listNodes := func() (map[string]swarm.Node, error) {
		if nodes != nil {
			return nodes, nil
		}
		nl, err := api.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return nil, err
		}
		nodes = map[string]swarm.Node{}
		for _, n := range nl.Items {
			nodes[n.ID] = n
		}
		return nodes, nil
	}
	if refs := f["node"]; len(refs) > 0 {
		if err := resolveNodeFilter(ctx, api, f, listNodes); err != nil {
			return err
		}
	}
	tl, err := api.TaskList(ctx, client.TaskListOptions{Filters: f})
	if err != nil {
		return err
	}
	tasks := tl.Items
	if o.quiet {
		o.noTrunc = true
	}
	if !o.noResolve && !o.quiet {
		for _, t := range tasks {
			if t.NodeID != "" {
				if _, err := listNodes(); err != nil {
					return err
				}
				break
			}
		}
	}
	lf := resolveListFormat(o.format, o.quiet, defaultTaskTable, rawTaskFormat, rawTaskQuiet)
	rows := taskRows(tasks, names, nodes, o.noResolve, !o.noTrunc, lf.table)
	return writeList(out, lf, taskListHeader, rows)
}

// taskRows names and orders tasks as docker's `service ps` does: tasks of
// one slot together, newest first; in tables the older ones are marked
// " \_ ".
func taskRows(tasks []swarm.Task, serviceNames map[string]string, nodes map[string]swarm.Node, noResolve, trunc, table bool) []*taskRow {
	rows := make([]*taskRow, len(tasks))
	for i, t := range tasks {
		svc := t.ServiceID
		if n := serviceNames[t.ServiceID]; n != "" && !noResolve {
			svc = n
		}
		name := fmt.Sprintf("%s.%d", svc, t.Slot)
		if t.Slot == 0 {
			name = svc + "." + t.NodeID
		}
		node := t.NodeID
		if n, ok := nodes[t.NodeID]; ok && !noResolve && n.Description.Hostname != "" {
			node = n.Description.Hostname
		}
		rows[i] = &taskRow{t: t, name: name, node: node, trunc: trunc}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].name != rows[j].name {
			return naturalLess(rows[i].name, rows[j].name)
		}
		return rows[j].t.CreatedAt.Before(rows[i].t.CreatedAt)
	})
	if table {
		prev := ""
		for _, r := range rows {
			name := r.name
			if name == prev {
				r.name = ` \_ ` + name
			}
			prev = name
		}
	}
	return rows
}

// resolveServices finds the services named by refs: full ID, then full
// name, then unique ID prefix (docker's order). Refs that match nothing
// are returned as "no such service" messages; none matching is an error.
func resolveServices(ctx context.Context, api apiClient, refs []string) ([]swarm.Service, []string, error) {
	byID, byName := client.Filters{}, client.Filters{}
	for _, r := range refs {
		byID.Add("id", r)
		byName.Add("name", r)
	}
	idRes, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: byID})
	if err != nil {
		return nil, nil, err
	}
	nameRes, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: byName})
	if err != nil {
		return nil, nil, err
	}
	var (
		found    []swarm.Service
		notFound []string
		seen     = map[string]bool{}
	)
	add := func(s swarm.Service) {
		if !seen[s.ID] {
			seen[s.ID] = true
			found = append(found, s)
		}
	}
refs:
	for _, r := range refs {
		for _, s := range idRes.Items {
			if s.ID == r {
				add(s)
				continue refs
			}
		}
		for _, s := range nameRes.Items {
			if s.Spec.Name == r {
				add(s)
				continue refs
			}
		}
		var match *swarm.Service
		for i, s := range idRes.Items {
			if strings.HasPrefix(s.ID, r) {
				if match != nil {
					return nil, nil, errors.New("multiple services found with provided prefix: " + r)
				}
				match = &idRes.Items[i]
			}
		}
		if match == nil {
			notFound = append(notFound, "no such service: "+r)
			continue
		}
		add(*match)
	}
	if len(found) == 0 {
		return nil, nil, errors.New(strings.Join(notFound, "\n"))
	}
	return found, notFound, nil
}

// resolveNodeFilter turns node=self and node=HOSTNAME filter values into
// node IDs; other values go to the daemon as they are.
func resolveNodeFilter(ctx context.Context, api apiClient, f client.Filters, listNodes func() (map[string]swarm.Node, error)) error {
	var resolved []string
	for ref := range f["node"] {
		if ref == "self" {
			id, err := selfNodeID(ctx, api)
			if err != nil {
				return err
			}
			resolved = append(resolved, id)
			continue
		}
		nodes, err := listNodes()
		if err != nil {
			return err
		}
		id := ref
		if _, isID := nodes[ref]; !isID {
			for _, n := range nodes {
				if n.Description.Hostname == ref {
					id = n.ID
					break
				}
			}
		}
		resolved = append(resolved, id)
	}
	delete(f, "node")
	f.Add("node", resolved...)
	return nil
}
