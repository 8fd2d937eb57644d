package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newServiceCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Manage swarm services",
		Args:  groupArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(
		newServiceCreateCommand(env),
		newServiceInspectCommand(env),
		newServiceLogsCommand(env),
		newServiceLsCommand(env),
		newServicePsCommand(env),
		newServiceRmCommand(env),
		newServiceRollbackCommand(env),
		newServiceScaleCommand(env),
		newServiceUpdateCommand(env),
	)
	return cmd
}

// truncID shortens an object ID for display, as docker does.
func truncID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// displayImage drops the digest of a tagged image reference for display:
// "nginx:1.27@sha256:..." -> "nginx:1.27" (docker keeps the digest of an
// untagged reference).
func displayImage(image string) string {
	name, _, hasDigest := strings.Cut(image, "@")
	if !hasDigest {
		return image
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		return name
	}
	return image
}

// formatPorts renders published ports docker style, "*:8080->80/tcp",
// folding consecutive ports into ranges ("*:8080-8081->80-81/tcp").
func formatPorts(ports []swarm.PortConfig, ingressOnly bool) string {
	var ps []swarm.PortConfig
	for _, p := range ports {
		if ingressOnly && p.PublishMode != swarm.PortConfigPublishModeIngress && p.PublishMode != "" {
			continue
		}
		ps = append(ps, p)
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Protocol != ps[j].Protocol {
			return ps[i].Protocol < ps[j].Protocol
		}
		return ps[i].PublishedPort < ps[j].PublishedPort
	})
	span := func(a, b uint32) string {
		if a == b {
			return strconv.FormatUint(uint64(a), 10)
		}
		return fmt.Sprintf("%d-%d", a, b)
	}
	var out []string
	for i := 0; i < len(ps); {
		j := i + 1
		for j < len(ps) && ps[j].Protocol == ps[i].Protocol &&
			ps[j].PublishedPort == ps[j-1].PublishedPort+1 && ps[j].TargetPort == ps[j-1].TargetPort+1 {
			j++
		}
		first, last := ps[i], ps[j-1]
		proto := first.Protocol
		if proto == "" {
			proto = network.TCP
		}
		out = append(out, fmt.Sprintf("*:%s->%s/%s", span(first.PublishedPort, last.PublishedPort), span(first.TargetPort, last.TargetPort), proto))
		i = j
	}
	return strings.Join(out, ", ")
}

// serviceNotFound rewrites a daemon's not-found error the way docker's
// service commands report it.
func serviceNotFound(err error, ref string) error {
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("no such service: %s", ref)
	}
	return err
}

func newServiceRmCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rm SERVICE [SERVICE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more services",
		Args:    minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		return removeEach(cmd, args, func(ref string) error {
			_, err := api.ServiceRemove(cmd.Context(), ref, client.ServiceRemoveOptions{})
			return err
		}, nil)
	})
	return cmd
}

func newServiceInspectCommand(env *cliEnv) *cobra.Command {
	var (
		format string
		pretty bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] SERVICE [SERVICE...]",
		Short: "Display detailed information on one or more services",
		Args:  minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		if pretty && format != "" && format != formatPretty {
			return errors.New("cannot supply extra formatting options to the pretty template")
		}
		if format == formatPretty {
			pretty = true
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		fetch := func(ref string) (any, []byte, error) {
			res, err := api.ServiceInspect(ctx, ref, client.ServiceInspectOptions{InsertDefaults: true})
			if err != nil {
				return nil, nil, serviceNotFound(err, ref)
			}
			return res.Service, res.Raw, nil
		}
		if pretty {
			return writePrettyAll(cmd.OutOrStdout(), args, fetch, func(w io.Writer, v any) { writePrettyService(w, v.(swarm.Service)) })
		}
		return writeInspect(cmd.OutOrStdout(), format, args, fetch)
	})
	flags := cmd.Flags()
	flags.StringVarP(&format, "format", "f", "", "Format output using a custom Go template ('json' for compact JSON)")
	flags.BoolVar(&pretty, "pretty", false, "Print the information in a human friendly format")
	return cmd
}

func writePrettyService(out io.Writer, s swarm.Service) {
	field, section := prettyFields(out)
	list := func(indent string, m map[string]string) {
		for _, k := range sortedKeys(m) {
			fmt.Fprintf(out, "%s- %s\n", indent, kv(k, m[k]))
		}
	}
	ago := func(t time.Time) string { return units.HumanDuration(time.Since(t)) + " ago" }
	spec := s.Spec
	tt := spec.TaskTemplate

	field("ID", s.ID)
	field("Name", spec.Name)
	if len(spec.Labels) > 0 {
		section("Labels")
		list(" ", spec.Labels)
	}
	switch {
	case spec.Mode.Global != nil:
		field("Service Mode", "Global")
	case spec.Mode.Replicated != nil:
		field("Service Mode", "Replicated")
		if r := spec.Mode.Replicated.Replicas; r != nil {
			field(" Replicas", *r)
		}
	}
	if us := s.UpdateStatus; us != nil && us.State != "" {
		section("UpdateStatus")
		field(" State", us.State)
		if us.StartedAt != nil {
			field(" Started", ago(*us.StartedAt))
		}
		if us.State == swarm.UpdateStateCompleted && us.CompletedAt != nil {
			field(" Completed", ago(*us.CompletedAt))
		}
		field(" Message", us.Message)
	}
	section("Placement")
	if p := tt.Placement; p != nil {
		if len(p.Constraints) > 0 {
			field(" Constraints", strings.Join(p.Constraints, ", "))
		}
		var prefs []string
		for _, pref := range p.Preferences {
			if s := placementPrefString(pref); s != "" {
				prefs = append(prefs, s)
			}
		}
		if len(prefs) > 0 {
			field(" Preferences", strings.Join(prefs, ", "))
		}
		if p.MaxReplicas > 0 {
			field(" Max Replicas Per Node", p.MaxReplicas)
		}
	}
	writeUpdateConfig := func(title, orderLabel string, c *swarm.UpdateConfig) {
		if c == nil {
			return
		}
		section(title)
		field(" Parallelism", c.Parallelism)
		if c.Delay > 0 {
			field(" Delay", c.Delay)
		}
		field(" On failure", c.FailureAction)
		if c.Monitor > 0 {
			field(" Monitoring Period", c.Monitor)
		}
		field(" Max failure ratio", c.MaxFailureRatio)
		field(orderLabel, c.Order)
	}
	writeUpdateConfig("UpdateConfig", " Update order", spec.UpdateConfig)
	writeUpdateConfig("RollbackConfig", " Rollback order", spec.RollbackConfig)
	if rp := tt.RestartPolicy; rp != nil {
		section("RestartPolicy")
		field(" Condition", rp.Condition)
		if rp.Delay != nil {
			field(" Delay", *rp.Delay)
		}
		if rp.MaxAttempts != nil {
			field(" Max attempts", *rp.MaxAttempts)
		}
		if rp.Window != nil {
			field(" Window", *rp.Window)
		}
	}
	if cs := tt.ContainerSpec; cs != nil {
		section("ContainerSpec")
		field(" Image", cs.Image)
		if d := cs.Labels[DriverLabel]; d != "" {
			field(" Driver", d)
		}
		if len(cs.Command) > 0 {
			field(" Command", strings.Join(cs.Command, " "))
		}
		if len(cs.Args) > 0 {
			field(" Args", strings.Join(cs.Args, " "))
		}
		if len(cs.Env) > 0 {
			field(" Env", strings.Join(cs.Env, " "))
		}
		if cs.Dir != "" {
			field(" Dir", cs.Dir)
		}
		if cs.User != "" {
			field(" User", cs.User)
		}
		if cs.Hostname != "" {
			field(" Hostname", cs.Hostname)
		}
		if cs.StopGracePeriod != nil {
			field(" Stop grace period", *cs.StopGracePeriod)
		}
		if len(cs.Labels) > 0 {
			section(" Labels")
			list("  ", cs.Labels)
		}
		if len(cs.Mounts) > 0 {
			section("Mounts") // as docker's
			for _, m := range cs.Mounts {
				field(" Target", m.Target)
				field("  Source", m.Source)
				field("  ReadOnly", m.ReadOnly)
				field("  Type", m.Type)
			}
		}
	}
	if r := tt.Resources; r != nil && (r.Reservations != nil || r.Limits != nil) {
		section("Resources")
		if v := r.Reservations; v != nil && (v.NanoCPUs > 0 || v.MemoryBytes > 0) {
			section(" Reservations")
			if v.NanoCPUs > 0 {
				field("  CPU", float64(v.NanoCPUs)/1e9)
			}
			if v.MemoryBytes > 0 {
				field("  Memory", units.BytesSize(float64(v.MemoryBytes)))
			}
		}
		if l := r.Limits; l != nil && (l.NanoCPUs > 0 || l.MemoryBytes > 0 || l.Pids > 0) {
			section(" Limits")
			if l.NanoCPUs > 0 {
				field("  CPU", float64(l.NanoCPUs)/1e9)
			}
			if l.MemoryBytes > 0 {
				field("  Memory", units.BytesSize(float64(l.MemoryBytes)))
			}
			if l.Pids > 0 {
				field("  PIDs", l.Pids)
			}
		}
	}
	if len(tt.Networks) > 0 {
		// As docker's: the targets, which the managers store as IDs.
		var ids []string
		for _, n := range tt.Networks {
			ids = append(ids, n.Target)
		}
		field("Networks", strings.Join(ids, " "))
	}
	if es := spec.EndpointSpec; es != nil && es.Mode != "" {
		field("Endpoint Mode", es.Mode)
	}
	if len(s.Endpoint.Ports) > 0 {
		field("Ports", formatPorts(s.Endpoint.Ports, false))
	}
}
