package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const (
	defaultNetworkTable = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
	rawNetworkFormat    = `network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n`
	rawNetworkQuiet     = `network_id: {{.ID}}`
)

// networkListHeader holds the column titles of `network ls`, by field name.
var networkListHeader = map[string]string{
	"ID":        "NETWORK ID",
	"Name":      "NAME",
	"Driver":    "DRIVER",
	"Scope":     "SCOPE",
	"IPv4":      "IPV4",
	"IPv6":      "IPV6",
	"Internal":  "INTERNAL",
	"Labels":    "LABELS",
	"CreatedAt": "CREATED AT",
}

// networkRow is one row of `network ls`, with docker's field names.
type networkRow struct {
	n     network.Summary
	trunc bool
}

func (r *networkRow) ID() string {
	if r.trunc {
		return truncate(r.n.ID, 12)
	}
	return r.n.ID
}
func (r *networkRow) Name() string      { return r.n.Name }
func (r *networkRow) Driver() string    { return r.n.Driver }
func (r *networkRow) Scope() string     { return r.n.Scope }
func (r *networkRow) IPv4() string      { return fmt.Sprint(r.n.EnableIPv4) }
func (r *networkRow) IPv6() string      { return fmt.Sprint(r.n.EnableIPv6) }
func (r *networkRow) Internal() string  { return fmt.Sprint(r.n.Internal) }
func (r *networkRow) CreatedAt() string { return r.n.Created.String() }
func (r *networkRow) Labels() string {
	var kv []string
	for _, k := range sortedKeys(r.n.Labels) {
		kv = append(kv, k+"="+r.n.Labels[k])
	}
	return strings.Join(kv, ",")
}

// Label returns the value of one label, as docker's {{.Label "key"}}.
func (r *networkRow) Label(name string) string { return r.n.Labels[name] }

func newNetworkCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage swarm networks",
		Args:  groupArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(
		newNetworkCreateCommand(env),
		newNetworkLsCommand(env),
		newNetworkInspectCommand(env),
		newNetworkRmCommand(env),
	)
	return cmd
}

// networkCreateOpts are the flags of `network create`.
type networkCreateOpts struct {
	driver, scope, ipamDriver          string
	attachable, internal, ingress, ip6 bool
	subnets, gateways, ipRanges        []string
	labels, opts, ipamOpts             []string
}

// request turns the flags into the API's create options; each gateway
// and IP range goes with the subnet that holds it, as in docker.
func (o *networkCreateOpts) request() (client.NetworkCreateOptions, error) {
	labels, err := parseLabels("label", o.labels)
	if err != nil {
		return client.NetworkCreateOptions{}, err
	}
	driverOpts, err := parseLabels("option", o.opts)
	if err != nil {
		return client.NetworkCreateOptions{}, err
	}
	ipamOpts, err := parseLabels("IPAM option", o.ipamOpts)
	if err != nil {
		return client.NetworkCreateOptions{}, err
	}
	req := client.NetworkCreateOptions{
		Driver: o.driver, Scope: o.scope, Attachable: o.attachable, Internal: o.internal, Ingress: o.ingress,
		Labels: labels, Options: driverOpts,
	}
	if o.ip6 {
		req.EnableIPv6 = &o.ip6
	}
	if len(o.subnets) == 0 && (len(o.gateways) > 0 || len(o.ipRanges) > 0) {
		return req, errors.New("--gateway and --ip-range need a --subnet that holds them")
	}
	ipam := &network.IPAM{Driver: o.ipamDriver, Options: ipamOpts}
	for _, s := range o.subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return req, fmt.Errorf("invalid --subnet %q: give it in CIDR form, such as 10.1.0.0/24", s)
		}
		ipam.Config = append(ipam.Config, network.IPAMConfig{Subnet: p})
	}
	place := func(what string, vals []string, set func(*network.IPAMConfig, string) (netip.Addr, error)) error {
		for _, v := range vals {
			found := false
			for i := range ipam.Config {
				a, err := set(&ipam.Config[i], v)
				if err != nil {
					return fmt.Errorf("invalid %s %q: %v", what, v, err)
				}
				if ipam.Config[i].Subnet.Contains(a) {
					found = true
					break
				}
			}
			if !found {
				return fmt.Errorf("no matching subnet for %s %s: give a --subnet that holds it", what, v)
			}
		}
		return nil
	}
	if err := place("--gateway", o.gateways, func(c *network.IPAMConfig, v string) (netip.Addr, error) {
		a, err := netip.ParseAddr(v)
		if err == nil && c.Subnet.Contains(a) {
			c.Gateway = a
		}
		return a, err
	}); err != nil {
		return req, err
	}
	if err := place("--ip-range", o.ipRanges, func(c *network.IPAMConfig, v string) (netip.Addr, error) {
		p, err := netip.ParsePrefix(v)
		if err == nil && c.Subnet.Contains(p.Addr()) {
			c.IPRange = p
		}
		return p.Addr(), err
	}); err != nil {
		return req, err
	}
	if len(ipam.Config) > 0 || ipam.Driver != "" || len(ipamOpts) > 0 {
		req.IPAM = ipam
	}
	return req, nil
}

func newNetworkCreateCommand(env *cliEnv) *cobra.Command {
	var o networkCreateOpts
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a swarm network",
		Args:  exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		req, err := o.request()
		if err != nil {
			return err
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		res, err := api.NetworkCreate(cmd.Context(), args[0], req)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), res.ID)
		return nil
	})
	flags := cmd.Flags()
	// docker's default is bridge, a local network flotilla has not; its
	// one driver is overlay.
	flags.StringVarP(&o.driver, "driver", "d", "overlay", "Driver to manage the Network (flotilla: overlay only)")
	flags.StringVar(&o.scope, "scope", "", "Control the network's scope (flotilla: swarm only)")
	flags.BoolVar(&o.attachable, "attachable", false, "Enable manual container attachment")
	flags.BoolVar(&o.internal, "internal", false, "Restrict external access to the network")
	flags.BoolVar(&o.ingress, "ingress", false, "Create swarm routing-mesh network")
	flags.BoolVar(&o.ip6, "ipv6", false, "Enable or disable IPv6 networking (not supported yet)")
	flags.StringSliceVar(&o.subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	flags.StringSliceVar(&o.gateways, "gateway", nil, "IPv4 Gateway for the master subnet")
	flags.StringSliceVar(&o.ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	flags.StringVar(&o.ipamDriver, "ipam-driver", "", "IP Address Management Driver (flotilla: default only)")
	flags.StringArrayVar(&o.ipamOpts, "ipam-opt", nil, "Set IPAM driver specific options")
	flags.StringArrayVarP(&o.opts, "opt", "o", nil, "Set driver specific options")
	flags.StringArrayVar(&o.labels, "label", nil, "Set metadata on a network")
	return cmd
}

func newNetworkLsCommand(env *cliEnv) *cobra.Command {
	var (
		quiet, noTrunc bool
		format         string
		filters        []string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
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
		return listNetworks(cmd.Context(), api, cmd.OutOrStdout(), f, format, quiet, !noTrunc)
	})
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	flags.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	flags.StringVar(&format, "format", "", "Format output using a custom template:\n"+
		"'table':            Print output in table format with column headers (default)\n"+
		"'table TEMPLATE':   Print output in table format using the given Go template\n"+
		"'json':             Print in JSON format\n"+
		"'TEMPLATE':         Print output using the given Go template\n"+
		"Fields: .ID .Name .Driver .Scope .IPv4 .IPv6 .Internal .Labels .Label .CreatedAt")
	flags.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. 'driver=overlay'; also id, name, label, scope, type)")
	return cmd
}

// listNetworks prints the networks like `docker network ls`, by name.
func listNetworks(ctx context.Context, api apiClient, out io.Writer, f client.Filters, format string, quiet, trunc bool) error {
	res, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return err
	}
	nets := res.Items
	sort.SliceStable(nets, func(i, j int) bool { return naturalLess(nets[i].Name, nets[j].Name) })
	rows := make([]*networkRow, len(nets))
	for i := range nets {
		rows[i] = &networkRow{n: nets[i], trunc: trunc}
	}
	return writeList(out, resolveListFormat(format, quiet, defaultNetworkTable, rawNetworkFormat, rawNetworkQuiet), networkListHeader, rows)
}

func newNetworkInspectCommand(env *cliEnv) *cobra.Command {
	var (
		format  string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		return writeInspect(cmd.OutOrStdout(), format, args, func(ref string) (any, []byte, error) {
			res, err := api.NetworkInspect(cmd.Context(), ref, client.NetworkInspectOptions{Verbose: verbose})
			if err != nil {
				return nil, nil, err
			}
			return res.Network, res.Raw, nil
		})
	})
	flags := cmd.Flags()
	flags.StringVarP(&format, "format", "f", "", "Format output using a custom Go template ('json' for compact JSON)")
	flags.BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

func newNetworkRmCommand(env *cliEnv) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		return removeEach(cmd, args, func(ref string) error {
			_, err := api.NetworkRemove(cmd.Context(), ref, client.NetworkRemoveOptions{})
			return err
		}, func(err error) bool {
			return force && cerrdefs.IsNotFound(err) // as docker: --force ignores missing networks
		})
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}
