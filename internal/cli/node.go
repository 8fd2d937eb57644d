package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const (
	// defaultNodeTable is docker's default `node ls` table: the ID column
	// carries " *" for the node the CLI is talking to.
	defaultNodeTable = "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}"
	rawNodeFormat    = `node_id: {{.ID}}\nhostname: {{.Hostname}}\nstatus: {{.Status}}\navailability: {{.Availability}}\nmanager_status: {{.ManagerStatus}}\n`
	rawNodeQuiet     = `node_id: {{.ID}}`
)

// nodeListHeader holds the column titles of `node ls`, by field name.
var nodeListHeader = map[string]string{
	"ID":            "ID",
	"Self":          "",
	"Hostname":      "HOSTNAME",
	"Status":        "STATUS",
	"Availability":  "AVAILABILITY",
	"ManagerStatus": "MANAGER STATUS",
	"EngineVersion": "ENGINE VERSION",
	"TLSStatus":     "TLS STATUS",
}

// nodeRow is what a `node ls --format` template sees: docker's field names.
type nodeRow struct {
	node swarm.Node
	info swarm.Info
}

func (r *nodeRow) ID() string       { return r.node.ID }
func (r *nodeRow) Self() bool       { return r.node.ID != "" && r.node.ID == r.info.NodeID }
func (r *nodeRow) Hostname() string { return r.node.Description.Hostname }
func (r *nodeRow) Status() string   { return capitalize(string(r.node.Status.State)) }
func (r *nodeRow) Availability() string {
	return capitalize(string(r.node.Spec.Availability))
}

func (r *nodeRow) ManagerStatus() string {
	ms := r.node.ManagerStatus
	switch {
	case ms == nil:
		return ""
	case ms.Leader:
		return "Leader"
	default:
		return capitalize(string(ms.Reachability))
	}
}

func (r *nodeRow) EngineVersion() string { return r.node.Description.Engine.EngineVersion }

// TLSStatus compares the node's TLS info with the cluster's trust root.
func (r *nodeRow) TLSStatus() string {
	cluster := r.info.Cluster
	mine := r.node.Description.TLSInfo
	if cluster == nil || reflect.DeepEqual(cluster.TLSInfo, swarm.TLSInfo{}) || reflect.DeepEqual(mine, swarm.TLSInfo{}) {
		return "Unknown"
	}
	if reflect.DeepEqual(mine, cluster.TLSInfo) {
		return "Ready"
	}
	return "Needs Rotation"
}

// MarshalJSON gives `{{json .}}` and `--format json` docker's object: every
// field above, keys sorted.
func (r *nodeRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"ID":            r.ID(),
		"Self":          r.Self(),
		"Hostname":      r.Hostname(),
		"Status":        r.Status(),
		"Availability":  r.Availability(),
		"ManagerStatus": r.ManagerStatus(),
		"EngineVersion": r.EngineVersion(),
		"TLSStatus":     r.TLSStatus(),
	})
}

func newNodeCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Manage swarm nodes",
		Args:  groupArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(
		newNodeLsCommand(env),
		newNodeInspectCommand(env),
		newNodePromoteCommand(env),
		newNodeDemoteCommand(env),
		newNodeRmCommand(env),
		newNodeUpdateCommand(env),
	)
	return cmd
}

// parseFilters turns --filter key=value flags into API filters.
func parseFilters(specs []string) (client.Filters, error) {
	f := client.Filters{}
	for _, s := range specs {
		k, v, ok := strings.Cut(s, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, fmt.Errorf("bad format of filter %q (expected name=value)", s)
		}
		f.Add(k, strings.TrimSpace(v))
	}
	return f, nil
}

func newNodeLsCommand(env *cliEnv) *cobra.Command {
	var (
		quiet   bool
		format  string
		filters []string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List nodes in the swarm",
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
		return listNodes(cmd.Context(), api, cmd.OutOrStdout(), f, format, quiet)
	})
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	flags.StringVar(&format, "format", "", "Format output using a custom template:\n"+
		"'table':            Print output in table format with column headers (default)\n"+
		"'table TEMPLATE':   Print output in table format using the given Go template\n"+
		"'json':             Print in JSON format\n"+
		"'TEMPLATE':         Print output using the given Go template\n"+
		"Fields: .ID .Self .Hostname .Status .Availability .ManagerStatus .EngineVersion .TLSStatus")
	flags.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (id, name, role, membership, label, node.label)")
	return cmd
}

// listNodes prints the nodes of the swarm like `docker node ls`.
func listNodes(ctx context.Context, api apiClient, out io.Writer, f client.Filters, format string, quiet bool) error {
	res, err := api.NodeList(ctx, client.NodeListOptions{Filters: f})
	if err != nil {
		return err
	}
	var info swarm.Info
	if len(res.Items) > 0 && !quiet {
		// Only needed to mark the local node (Self) and for TLSStatus.
		ir, err := api.Info(ctx, client.InfoOptions{})
		if err != nil {
			return err
		}
		info = ir.Info.Swarm
	}
	nodes := res.Items
	sort.SliceStable(nodes, func(i, j int) bool {
		return naturalLess(nodes[i].Description.Hostname, nodes[j].Description.Hostname)
	})
	rows := make([]*nodeRow, len(nodes))
	for i := range nodes {
		rows[i] = &nodeRow{node: nodes[i], info: info}
	}
	lf := resolveListFormat(format, quiet, defaultNodeTable, rawNodeFormat, rawNodeQuiet)
	return writeList(out, lf, nodeListHeader, rows)
}

// selfNodeID returns the ID of the node the CLI is connected to.
func selfNodeID(ctx context.Context, api apiClient) (string, error) {
	ir, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", err
	}
	if id := ir.Info.Swarm.NodeID; id != "" {
		return id, nil
	}
	// Not in a swarm (or no ID reported): a swarm endpoint gives the
	// daemon's own explanation.
	if _, err := api.NodeList(ctx, client.NodeListOptions{}); err != nil {
		return "", err
	}
	return "", errors.New("node ID not found in /info")
}

func newNodeInspectCommand(env *cliEnv) *cobra.Command {
	var (
		format string
		pretty bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] self|NODE [NODE...]",
		Short: "Display detailed information on one or more nodes",
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
			if ref == "self" {
				id, err := selfNodeID(ctx, api)
				if err != nil {
					return nil, nil, err
				}
				ref = id
			}
			res, err := api.NodeInspect(ctx, ref, client.NodeInspectOptions{})
			if err != nil {
				return nil, nil, err
			}
			return res.Node, res.Raw, nil
		}
		if pretty {
			return writePrettyAll(cmd.OutOrStdout(), args, fetch, func(w io.Writer, v any) { writePrettyNode(w, v.(swarm.Node)) })
		}
		return writeInspect(cmd.OutOrStdout(), format, args, fetch)
	})
	flags := cmd.Flags()
	flags.StringVarP(&format, "format", "f", "", "Format output using a custom Go template ('json' for compact JSON)")
	flags.BoolVar(&pretty, "pretty", false, "Print the information in a human friendly format")
	return cmd
}

func writePrettyNode(out io.Writer, n swarm.Node) {
	field, section := prettyFields(out)

	field("ID", n.ID)
	if n.Spec.Name != "" {
		field("Name", n.Spec.Name)
	}
	if len(n.Spec.Labels) > 0 {
		section("Labels")
		for _, k := range sortedKeys(n.Spec.Labels) {
			fmt.Fprintf(out, " - %s\n", kv(k, n.Spec.Labels[k]))
		}
	}
	field("Hostname", n.Description.Hostname)
	field("Joined at", n.CreatedAt)
	section("Status")
	field(" State", capitalize(string(n.Status.State)))
	if n.Status.Message != "" {
		field(" Message", capitalize(n.Status.Message))
	}
	field(" Availability", capitalize(string(n.Spec.Availability)))
	if n.Status.Addr != "" {
		field(" Address", n.Status.Addr)
	}
	if ms := n.ManagerStatus; ms != nil {
		section("Manager Status")
		field(" Address", ms.Addr)
		field(" Raft Status", capitalize(string(ms.Reachability)))
		if ms.Leader {
			field(" Leader", "Yes")
		} else {
			field(" Leader", "No")
		}
	}
	section("Platform")
	field(" Operating System", n.Description.Platform.OS)
	field(" Architecture", n.Description.Platform.Architecture)
	section("Resources")
	field(" CPUs", n.Description.Resources.NanoCPUs/1e9)
	mem := ""
	if b := n.Description.Resources.MemoryBytes; b != 0 {
		mem = units.BytesSize(float64(b))
	}
	field(" Memory", mem)
	if plugins := n.Description.Engine.Plugins; len(plugins) > 0 {
		byType := map[string][]string{}
		for _, pl := range plugins {
			byType[pl.Type] = append(byType[pl.Type], pl.Name)
		}
		section("Plugins")
		for _, k := range sortedKeys(byType) {
			field(" "+k, strings.Join(byType[k], ", "))
		}
	}
	field("Engine Version", n.Description.Engine.EngineVersion)
	if labels := n.Description.Engine.Labels; len(labels) > 0 {
		section("Engine Labels")
		for _, k := range sortedKeys(labels) {
			fmt.Fprintf(out, " - %s\n", kv(k, labels[k]))
		}
	}
	if tls := n.Description.TLSInfo; !reflect.DeepEqual(tls, swarm.TLSInfo{}) {
		section("TLS Info")
		section(" TrustRoot")
		fmt.Fprintln(out, strings.TrimRight(tls.TrustRoot, "\n"))
		field(" Issuer Subject", base64.StdEncoding.EncodeToString(tls.CertIssuerSubject))
		field(" Issuer Public Key", base64.StdEncoding.EncodeToString(tls.CertIssuerPublicKey))
	}
}

func kv(k, v string) string {
	if v == "" {
		return k
	}
	return k + "=" + v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// errNoChange tells updateNodes to skip a node without sending anything.
var errNoChange = errors.New("no change")

// updateNodes does a read-modify-write of each node: inspect, let mutate
// change the spec, then update with the version read. done is called after
// each successful update.
func updateNodes(ctx context.Context, api apiClient, refs []string, mutate func(*swarm.Node) error, done func(ref string)) error {
	for _, ref := range refs {
		res, err := api.NodeInspect(ctx, ref, client.NodeInspectOptions{})
		if err != nil {
			return err
		}
		node := res.Node
		if err := mutate(&node); err != nil {
			if errors.Is(err, errNoChange) {
				continue
			}
			return err
		}
		if _, err := api.NodeUpdate(ctx, node.ID, client.NodeUpdateOptions{Version: node.Version, Spec: node.Spec}); err != nil {
			return err
		}
		done(ref)
	}
	return nil
}

func newNodePromoteCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "promote NODE [NODE...]",
		Short: "Promote one or more nodes to manager in the swarm",
		Args:  minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		promoted := 0
		err = updateNodes(ctx, api, args, func(n *swarm.Node) error {
			if n.Spec.Role == swarm.NodeRoleManager {
				fmt.Fprintf(out, "Node %s is already a manager.\n", n.ID)
				return errNoChange
			}
			n.Spec.Role = swarm.NodeRoleManager
			return nil
		}, func(ref string) {
			promoted++
			fmt.Fprintf(out, "Node %s promoted to a manager in the swarm.\n", ref)
		})
		if err != nil || promoted == 0 {
			return err
		}
		ir, err := api.Info(ctx, client.InfoOptions{})
		if err != nil {
			return nil // the promotion worked; the advice is best effort
		}
		for _, w := range managerCountWarnings(ir.Info.Swarm.Managers) {
			fmt.Fprintln(cmd.ErrOrStderr(), w)
		}
		return nil
	})
	return cmd
}

// managerCountWarnings advises against manager counts that add cost but no
// fault tolerance.
func managerCountWarnings(managers int) []string {
	var w []string
	if managers > 0 && managers%2 == 0 {
		w = append(w, fmt.Sprintf("WARNING: the swarm now has %d managers. An even number of managers does not add fault tolerance: "+
			"%d managers tolerate the loss of %d, the same as %d. Use an odd number of managers.",
			managers, managers, (managers-1)/2, managers-1))
	}
	if managers > 7 {
		w = append(w, fmt.Sprintf("WARNING: the swarm now has %d managers. More than 7 managers slows down consensus "+
			"without a useful gain in fault tolerance; 3, 5 or 7 managers are recommended.", managers))
	}
	return w
}

func newNodeDemoteCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demote NODE [NODE...]",
		Short: "Demote one or more nodes from manager in the swarm",
		Args:  minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		return updateNodes(cmd.Context(), api, args, func(n *swarm.Node) error {
			if n.Spec.Role == swarm.NodeRoleWorker {
				fmt.Fprintf(out, "Node %s is already a worker.\n", n.ID)
				return errNoChange
			}
			n.Spec.Role = swarm.NodeRoleWorker
			return nil
		}, func(ref string) {
			fmt.Fprintf(out, "Manager %s demoted in the swarm.\n", ref)
		})
	})
	return cmd
}

func newNodeRmCommand(env *cliEnv) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] NODE [NODE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more nodes from the swarm",
		Args:    minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		return removeEach(cmd, args, func(ref string) error {
			_, err := api.NodeRemove(cmd.Context(), ref, client.NodeRemoveOptions{Force: force})
			return err
		}, nil)
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force remove a node from the swarm")
	return cmd
}

// nodeUpdate holds the validated flags of `node update`.
type nodeUpdate struct {
	role         swarm.NodeRole
	availability swarm.NodeAvailability
	labelAdd     map[string]string
	labelRm      []string
}

func parseAvailability(s string) (swarm.NodeAvailability, error) {
	a := swarm.NodeAvailability(strings.ToLower(strings.TrimSpace(s)))
	switch a {
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
		return a, nil
	}
	return "", fmt.Errorf("invalid availability %q: must be one of active, pause, drain", s)
}

func parseRole(s string) (swarm.NodeRole, error) {
	r := swarm.NodeRole(strings.ToLower(strings.TrimSpace(s)))
	switch r {
	case swarm.NodeRoleWorker, swarm.NodeRoleManager:
		return r, nil
	}
	return "", fmt.Errorf("invalid role %q: must be worker or manager", s)
}

func (u *nodeUpdate) apply(n *swarm.Node) error {
	spec := &n.Spec
	if u.role != "" {
		spec.Role = u.role
	}
	if u.availability != "" {
		spec.Availability = u.availability
	}
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	for k, v := range u.labelAdd {
		spec.Labels[k] = v
	}
	for _, k := range u.labelRm {
		if _, ok := spec.Labels[k]; !ok {
			return fmt.Errorf("key %s doesn't exist in node's labels", k)
		}
		delete(spec.Labels, k)
	}
	return nil
}

func newNodeUpdateCommand(env *cliEnv) *cobra.Command {
	var (
		role, availability string
		labelAdd, labelRm  []string
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] NODE",
		Short: "Update a node",
		Args:  exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		// Validate everything before talking to the daemon.
		var u nodeUpdate
		var err error
		flags := cmd.Flags()
		if flags.Changed("role") {
			if u.role, err = parseRole(role); err != nil {
				return err
			}
		}
		if flags.Changed("availability") {
			if u.availability, err = parseAvailability(availability); err != nil {
				return err
			}
		}
		if len(labelAdd) > 0 {
			u.labelAdd = map[string]string{}
			for _, l := range labelAdd {
				k, v, _ := strings.Cut(l, "=")
				if k == "" {
					return fmt.Errorf("invalid label %q: expected key=value", l)
				}
				u.labelAdd[k] = v
			}
		}
		u.labelRm = labelRm
		api, err := env.client()
		if err != nil {
			return err
		}
		return updateNodes(cmd.Context(), api, args, u.apply, func(ref string) {
			fmt.Fprintln(cmd.OutOrStdout(), ref)
		})
	})
	flags := cmd.Flags()
	flags.StringVar(&role, "role", "", `Role of the node ("worker", "manager")`)
	flags.StringVar(&availability, "availability", "", `Availability of the node ("active", "pause", "drain")`)
	flags.StringArrayVar(&labelAdd, "label-add", nil, `Add or update a node label ("key=value")`)
	flags.StringArrayVar(&labelRm, "label-rm", nil, "Remove a node label if exists")
	return cmd
}
