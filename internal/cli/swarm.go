package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/flotilla-org/flotilla/internal/discovery"
)

const (
	// DefaultSwarmPort is the cluster port managers listen on by default.
	DefaultSwarmPort  = "2377"
	defaultListenAddr = "0.0.0.0:" + DefaultSwarmPort
)

func newSwarmCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "swarm",
		Short: "Manage the swarm",
		Args:  groupArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(
		newSwarmInitCommand(env),
		newSwarmJoinCommand(env),
		newSwarmJoinTokenCommand(env),
		newSwarmLeaveCommand(env),
		newSwarmUpdateCommand(env),
		newSwarmUnlockKeyCommand(env),
		newSwarmUnlockCommand(env),
		newSwarmBackupCommand(env),
		newSwarmRestoreCommand(env),
	)
	return cmd
}

// parseNodeAddr normalizes a --listen-addr value the way docker does:
// "IP", ":PORT", "IP:PORT" or "tcp://IP:PORT"; a missing host means
// 0.0.0.0 and a missing port 2377. Interface names are passed through.
func parseNodeAddr(v string) (string, error) {
	orig := v
	v = strings.TrimSpace(v)
	if proto, rest, ok := strings.Cut(v, "://"); ok {
		if proto != "tcp" {
			return "", fmt.Errorf("invalid address %q: only tcp:// is supported", orig)
		}
		v = rest
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		// No port given.
		host, port = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"), ""
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if port == "" {
		port = DefaultSwarmPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("invalid address %q: bad port %q", orig, port)
	}
	return net.JoinHostPort(host, port), nil
}

// withDefaultPort appends the swarm port to an address that has none.
func withDefaultPort(addr string) string {
	if addr == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), DefaultSwarmPort)
}

// splitAddrs gathers manager addresses from arguments, each of which may
// hold several comma-separated addresses.
func splitAddrs(args []string) []string {
	var out []string
	for _, a := range args {
		for _, s := range strings.Split(a, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, withDefaultPort(s))
			}
		}
	}
	return out
}

// swarmSpecFlags are the flags that map onto swarm.Spec, shared by init and
// update. Only flags the user set are applied.
type swarmSpecFlags struct {
	taskHistoryLimit    int64
	dispatcherHeartbeat time.Duration
	certExpiry          time.Duration
	snapshotInterval    uint64
	maxSnapshots        uint64
	autolock            bool
}

var swarmSpecFlagNames = []string{"task-history-limit", "dispatcher-heartbeat", "cert-expiry", "snapshot-interval", "max-snapshots", "autolock"}

func (o *swarmSpecFlags) register(flags *pflag.FlagSet) {
	flags.Int64Var(&o.taskHistoryLimit, "task-history-limit", 5, "Task history retention limit")
	flags.DurationVar(&o.dispatcherHeartbeat, "dispatcher-heartbeat", 5*time.Second, "Dispatcher heartbeat period (ns|us|ms|s|m|h)")
	flags.DurationVar(&o.certExpiry, "cert-expiry", 90*24*time.Hour, "Validity period for node certificates (ns|us|ms|s|m|h)")
	flags.Uint64Var(&o.snapshotInterval, "snapshot-interval", 10000, "Number of log entries between Raft snapshots")
	flags.Uint64Var(&o.maxSnapshots, "max-snapshots", 0, "Number of additional Raft snapshots to retain")
	flags.BoolVar(&o.autolock, "autolock", false, "Enable manager autolocking (requiring an unlock key to start a stopped manager)")
}

func (o *swarmSpecFlags) validate(flags *pflag.FlagSet) error {
	if flags.Changed("task-history-limit") && o.taskHistoryLimit < 0 {
		return fmt.Errorf("invalid --task-history-limit %d: must be 0 or more", o.taskHistoryLimit)
	}
	if flags.Changed("dispatcher-heartbeat") && o.dispatcherHeartbeat <= 0 {
		return fmt.Errorf("invalid --dispatcher-heartbeat %s: must be positive", o.dispatcherHeartbeat)
	}
	if flags.Changed("cert-expiry") && o.certExpiry <= 0 {
		return fmt.Errorf("invalid --cert-expiry %s: must be positive", o.certExpiry)
	}
	return nil
}

func (o *swarmSpecFlags) merge(spec *swarm.Spec, flags *pflag.FlagSet) {
	if flags.Changed("task-history-limit") {
		v := o.taskHistoryLimit
		spec.Orchestration.TaskHistoryRetentionLimit = &v
	}
	if flags.Changed("dispatcher-heartbeat") {
		spec.Dispatcher.HeartbeatPeriod = o.dispatcherHeartbeat
	}
	if flags.Changed("cert-expiry") {
		spec.CAConfig.NodeCertExpiry = o.certExpiry
	}
	if flags.Changed("snapshot-interval") {
		spec.Raft.SnapshotInterval = o.snapshotInterval
	}
	if flags.Changed("max-snapshots") {
		v := o.maxSnapshots
		spec.Raft.KeepOldSnapshots = &v
	}
	if flags.Changed("autolock") {
		spec.EncryptionConfig.AutoLockManagers = o.autolock
	}
}

func newSwarmInitCommand(env *cliEnv) *cobra.Command {
	var (
		listenAddr, advertiseAddr, availability string
		forceNew                                bool
		spec                                    swarmSpecFlags
		fromBackup                              string
	)
	cmd := &cobra.Command{
		Use:   "init [OPTIONS]",
		Short: "Initialize a swarm",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		flags := cmd.Flags()
		if fromBackup != "" {
			if !forceNew {
				return errors.New("--from-backup restores a swarm from a backup and needs --force-new-cluster (or use 'swarm restore -i FILE')")
			}
			return runRestore(cmd, env, fromBackup, listenAddr, advertiseAddr)
		}
		listen, err := parseNodeAddr(listenAddr)
		if err != nil {
			return err
		}
		if err := spec.validate(flags); err != nil {
			return err
		}
		opts := client.SwarmInitOptions{
			ListenAddr:       listen,
			AdvertiseAddr:    strings.TrimSpace(advertiseAddr),
			ForceNewCluster:  forceNew,
			AutoLockManagers: spec.autolock,
		}
		spec.merge(&opts.Spec, flags)
		if flags.Changed("availability") {
			if opts.Availability, err = parseAvailability(availability); err != nil {
				return err
			}
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		res, err := api.SwarmInit(ctx, opts)
		if err != nil {
			if strings.Contains(err.Error(), "could not choose an IP address to advertise") ||
				strings.Contains(err.Error(), "could not find the system's IP address") {
				return errors.New(err.Error() + " - specify one with --advertise-addr")
			}
			return err
		}
		fmt.Fprintf(out, "Swarm initialized: current node (%s) is now a manager.\n\n", res.NodeID)
		sw, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
		if err != nil {
			return err
		}
		addr, err := joinAddr(ctx, api)
		if err != nil {
			return err
		}
		printJoinCommand(out, rootName(cmd), "worker", sw.Swarm.JoinTokens.Worker, addr)
		fmt.Fprintf(out, "To add a manager to this swarm, run '%s swarm join-token manager' and follow the instructions.\n", rootName(cmd))
		if opts.AutoLockManagers {
			return printUnlockKey(ctx, api, out, rootName(cmd))
		}
		return nil
	})
	flags := cmd.Flags()
	flags.StringVar(&listenAddr, "listen-addr", defaultListenAddr, `Listen address (format: "<ip|interface>[:port]")`)
	flags.StringVar(&advertiseAddr, "advertise-addr", "", `Advertised address (format: "<ip|interface>[:port]")`)
	flags.StringVar(&availability, "availability", "active", `Availability of the node ("active", "pause", "drain")`)
	flags.BoolVar(&forceNew, "force-new-cluster", false, "Force create a new cluster from current state")
	flags.StringVar(&fromBackup, "from-backup", "", "With --force-new-cluster: restore the swarm from this backup file (as 'swarm restore -i')")
	spec.register(flags)
	return cmd
}

// joinAddr is the address other nodes use to reach this manager: its own
// entry in RemoteManagers, else its node address with the default port.
func joinAddr(ctx context.Context, api apiClient) (string, error) {
	ir, err := api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", err
	}
	si := ir.Info.Swarm
	for _, p := range si.RemoteManagers {
		if p.NodeID == si.NodeID && p.Addr != "" {
			return p.Addr, nil
		}
	}
	if si.NodeAddr != "" {
		return withDefaultPort(si.NodeAddr), nil
	}
	if si.NodeID != "" {
		if res, err := api.NodeInspect(ctx, si.NodeID, client.NodeInspectOptions{}); err == nil && res.Node.ManagerStatus != nil {
			return res.Node.ManagerStatus.Addr, nil
		}
	}
	if len(si.RemoteManagers) > 0 {
		return si.RemoteManagers[0].Addr, nil
	}
	return "", errors.New("cannot determine this manager's address: the daemon reports neither NodeAddr nor RemoteManagers")
}

func printJoinCommand(out io.Writer, prog, role, token, addr string) {
	fmt.Fprintf(out, "To add a %s to this swarm, run the following command:\n\n    %s swarm join --token %s %s\n\n", role, prog, token, addr)
}

func newSwarmJoinCommand(env *cliEnv) *cobra.Command {
	var (
		token, listenAddr, advertiseAddr, availability, discover string
	)
	cmd := &cobra.Command{
		Use:   "join [OPTIONS] HOST:PORT[,HOST:PORT...] [HOST:PORT...]",
		Short: "Join a swarm as a node and/or manager",
		Long: "Join a swarm as a node and/or manager.\n\n" +
			"Several manager addresses may be given, comma-separated and/or as separate\n" +
			"arguments; the daemon tries each of them in turn. --discover SPEC asks a\n" +
			"discovery provider for them instead (dns:NAME, dns+srv:NAME, file:PATH, ...).",
		Args: func(cmd *cobra.Command, args []string) error {
			if discover != "" {
				return nil
			}
			return minArgs(1)(cmd, args)
		},
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		remotes := splitAddrs(args)
		if discover != "" {
			found, err := discoverManagers(cmd.Context(), discover)
			if err != nil {
				return err
			}
			remotes = append(remotes, found...)
		}
		if len(remotes) == 0 {
			return errors.New("no manager address given")
		}
		listen, err := parseNodeAddr(listenAddr)
		if err != nil {
			return err
		}
		opts := client.SwarmJoinOptions{
			JoinToken:     strings.TrimSpace(token),
			ListenAddr:    listen,
			AdvertiseAddr: strings.TrimSpace(advertiseAddr),
			RemoteAddrs:   remotes,
		}
		if cmd.Flags().Changed("availability") {
			if opts.Availability, err = parseAvailability(availability); err != nil {
				return err
			}
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		if _, err := api.SwarmJoin(ctx, opts); err != nil {
			return err
		}
		ir, err := api.Info(ctx, client.InfoOptions{})
		if err != nil {
			return err
		}
		if ir.Info.Swarm.ControlAvailable {
			fmt.Fprintln(cmd.OutOrStdout(), "This node joined a swarm as a manager.")
		} else {
			fmt.Fprintln(cmd.OutOrStdout(), "This node joined a swarm as a worker.")
		}
		return nil
	})
	flags := cmd.Flags()
	flags.StringVar(&token, "token", "", "Token for entry into the swarm")
	flags.StringVar(&listenAddr, "listen-addr", defaultListenAddr, `Listen address (format: "<ip|interface>[:port]")`)
	flags.StringVar(&advertiseAddr, "advertise-addr", "", `Advertised address (format: "<ip|interface>[:port]")`)
	flags.StringVar(&availability, "availability", "active", `Availability of the node ("active", "pause", "drain")`)
	flags.StringVar(&discover, "discover", "", "Find the managers through a discovery spec (dns:NAME[:PORT], dns+srv:NAME, file:PATH, ADDR,ADDR)")
	return cmd
}

// discoverManagers asks a discovery provider, on the CLI's side, where the
// managers are; the daemon then tries each as with addresses given.
func discoverManagers(ctx context.Context, spec string) ([]string, error) {
	p, err := discovery.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("--discover: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := p.Managers(ctx)
	if err != nil {
		return nil, fmt.Errorf("--discover: %w", err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("--discover: %s lists no manager", p)
	}
	return addrs, nil
}

func newSwarmJoinTokenCommand(env *cliEnv) *cobra.Command {
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:   "join-token [OPTIONS] (worker|manager)",
		Short: "Manage join tokens",
		Args:  exactArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		role := args[0]
		if role != "worker" && role != "manager" {
			return fmt.Errorf("unknown role %s: must be worker or manager", role)
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		if rotate {
			sw, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
			if err != nil {
				return err
			}
			if _, err := api.SwarmUpdate(ctx, client.SwarmUpdateOptions{
				Version:            sw.Swarm.Version,
				Spec:               sw.Swarm.Spec,
				RotateWorkerToken:  role == "worker",
				RotateManagerToken: role == "manager",
			}); err != nil {
				return err
			}
			if !quiet {
				fmt.Fprintf(out, "Successfully rotated %s join token.\n\n", role)
			}
		}
		// Read the tokens (again, after a rotation).
		sw, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
		if err != nil {
			return err
		}
		token := sw.Swarm.JoinTokens.Worker
		if role == "manager" {
			token = sw.Swarm.JoinTokens.Manager
		}
		if quiet {
			fmt.Fprintln(out, token)
			return nil
		}
		addr, err := joinAddr(ctx, api)
		if err != nil {
			return err
		}
		printJoinCommand(out, rootName(cmd), role, token, addr)
		return nil
	})
	flags := cmd.Flags()
	flags.BoolVar(&rotate, "rotate", false, "Rotate join token")
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display token")
	return cmd
}

func newSwarmLeaveCommand(env *cliEnv) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "leave [OPTIONS]",
		Short: "Leave the swarm",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		if _, err := api.SwarmLeave(cmd.Context(), client.SwarmLeaveOptions{Force: force}); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), "Node left the swarm.")
		return nil
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force this node to leave the swarm, ignoring warnings")
	return cmd
}

func newSwarmUpdateCommand(env *cliEnv) *cobra.Command {
	var spec swarmSpecFlags
	var downRemoval time.Duration
	cmd := &cobra.Command{
		Use:   "update [OPTIONS]",
		Short: "Update the swarm",
		Args:  noArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range append(swarmSpecFlagNames, "node-down-removal") {
				if cmd.Flags().Changed(name) {
					return nil
				}
			}
			return pflag.ErrHelp // nothing to change: show usage, like docker
		},
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		flags := cmd.Flags()
		if err := spec.validate(flags); err != nil {
			return err
		}
		if downRemoval < 0 {
			return fmt.Errorf("invalid --node-down-removal %s: it must be 0 (off) or a positive duration", downRemoval)
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		res, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
		if err != nil {
			return err
		}
		sw := res.Swarm
		wasLocked := sw.Spec.EncryptionConfig.AutoLockManagers
		spec.merge(&sw.Spec, flags)
		if flags.Changed("node-down-removal") {
			sw.Spec.Labels = maps.Clone(sw.Spec.Labels)
			if sw.Spec.Labels == nil {
				sw.Spec.Labels = map[string]string{}
			}
			sw.Spec.Labels[nodeDownRemovalLabel] = downRemoval.String()
		}
		if _, err := api.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Version, Spec: sw.Spec}); err != nil {
			return err
		}
		fmt.Fprintln(out, "Swarm updated.")
		if sw.Spec.EncryptionConfig.AutoLockManagers && !wasLocked {
			return printUnlockKey(ctx, api, out, rootName(cmd))
		}
		return nil
	})
	spec.register(cmd.Flags())
	cmd.Flags().DurationVar(&downRemoval, "node-down-removal", 0, "Remove nodes that stay Down longer than this (ns|us|ms|s|m|h); 0 turns it off (flotilla only)")
	return cmd
}

// nodeDownRemovalLabel is the cluster spec label through which a flotilla
// manager shows and takes its node-down-removal period (the manager's
// NodeDownRemovalLabel); Docker's swarm spec has no field for it.
const nodeDownRemovalLabel = "flotilla.node-down-removal"

func printUnlockKey(ctx context.Context, api apiClient, out io.Writer, prog string) error {
	res, err := api.SwarmGetUnlockKey(ctx)
	if err != nil {
		return fmt.Errorf("could not fetch unlock key: %w", err)
	}
	if res.Key == "" {
		return nil
	}
	fmt.Fprintf(out, "To unlock a swarm manager after it restarts, run the `%s swarm unlock`\n"+
		"command and provide the following key:\n\n    %s\n\n"+
		"Remember to store this key in a password manager, since without it you\n"+
		"will not be able to restart the manager.\n", prog, res.Key)
	return nil
}

func newSwarmUnlockKeyCommand(env *cliEnv) *cobra.Command {
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:   "unlock-key [OPTIONS]",
		Short: "Manage the unlock key",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx, out := cmd.Context(), cmd.OutOrStdout()
		if rotate {
			res, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
			if err != nil {
				return err
			}
			if !res.Swarm.Spec.EncryptionConfig.AutoLockManagers {
				return errors.New("cannot rotate because autolock is not turned on")
			}
			if _, err := api.SwarmUpdate(ctx, client.SwarmUpdateOptions{
				Version: res.Swarm.Version, Spec: res.Swarm.Spec, RotateManagerUnlockKey: true,
			}); err != nil {
				return err
			}
			if !quiet {
				fmt.Fprint(out, "Successfully rotated manager unlock key.\n\n")
			}
		}
		res, err := api.SwarmGetUnlockKey(ctx)
		if err != nil {
			return fmt.Errorf("could not fetch unlock key: %w", err)
		}
		if res.Key == "" {
			return errors.New("no unlock key is set")
		}
		if quiet {
			fmt.Fprintln(out, res.Key)
			return nil
		}
		return printUnlockKey(ctx, api, out, rootName(cmd))
	})
	flags := cmd.Flags()
	flags.BoolVar(&rotate, "rotate", false, "Rotate unlock key")
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display the key")
	return cmd
}
