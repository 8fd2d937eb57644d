package cli

import (
	"fmt"
	"io"
	"sort"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newInfoCommand(env *cliEnv) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		api, err := env.client()
		if err != nil {
			return err
		}
		if format != "" {
			res, err := api.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				return err
			}
			return writeTemplated(out, format, res.Info)
		}
		fmt.Fprintln(out, "Client:")
		fmt.Fprintln(out, " Version:", Version)
		fmt.Fprintln(out, " Host:", env.host)
		fmt.Fprintln(out)
		fmt.Fprintln(out, "Server:")
		res, err := api.Info(cmd.Context(), client.InfoOptions{})
		if err != nil {
			return err
		}
		writeServerInfo(out, res.Info)
		return nil
	})
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom Go template ('json' for JSON)")
	return cmd
}

// writeTemplated executes a --format template (or "json") on v.
func writeTemplated(out io.Writer, format string, v any) error {
	if format == formatJSON {
		format = jsonTemplate
	}
	tmpl, err := parseTemplate(format, templateFuncs)
	if err != nil {
		return err
	}
	if err := tmpl.Execute(out, v); err != nil {
		return fmt.Errorf("template parsing error: %v", err)
	}
	_, err = fmt.Fprintln(out)
	return err
}

func writeServerInfo(out io.Writer, info system.Info) {
	line := func(label string, v any) { fmt.Fprintln(out, label, v) }
	if info.Name != "" {
		line(" Name:", info.Name)
	}
	if info.ID != "" {
		line(" ID:", info.ID)
	}
	if info.ServerVersion != "" {
		line(" Server Version:", info.ServerVersion)
	}
	if info.OperatingSystem != "" {
		line(" Operating System:", info.OperatingSystem)
	}
	if info.OSType != "" {
		line(" OSType:", info.OSType)
	}
	if info.Architecture != "" {
		line(" Architecture:", info.Architecture)
	}
	if info.NCPU > 0 {
		line(" CPUs:", info.NCPU)
	}
	if info.MemTotal > 0 {
		line(" Total Memory:", units.BytesSize(float64(info.MemTotal)))
	}
	writeSwarmInfo(out, info.Swarm)
	for _, w := range info.Warnings {
		fmt.Fprintln(out, w)
	}
}

// writeSwarmInfo prints the swarm section of `info`, docker's layout plus the
// fault tolerance of the manager set.
func writeSwarmInfo(out io.Writer, si swarm.Info) {
	state := si.LocalNodeState
	if state == "" {
		state = swarm.LocalNodeStateInactive
	}
	fmt.Fprintln(out, " Swarm:", state)
	if state == swarm.LocalNodeStateInactive || state == swarm.LocalNodeStateLocked {
		if si.Error != "" {
			fmt.Fprintln(out, "  Error:", si.Error)
		}
		return
	}
	line := func(label string, v any) { fmt.Fprintln(out, label, v) }
	line("  NodeID:", si.NodeID)
	if si.Error != "" {
		line("  Error:", si.Error)
	}
	line("  Is Manager:", si.ControlAvailable)
	if c := si.Cluster; c != nil && si.ControlAvailable && si.Error == "" && state != swarm.LocalNodeStateError {
		line("  ClusterID:", c.ID)
		line("  Managers:", si.Managers)
		line("  Nodes:", si.Nodes)
		if si.Managers > 0 {
			fmt.Fprintf(out, "  Fault tolerance: %d managers may fail (quorum needs %d)\n", (si.Managers-1)/2, si.Managers/2+1)
		}
		fmt.Fprintln(out, "  Orchestration:")
		var limit int64
		if l := c.Spec.Orchestration.TaskHistoryRetentionLimit; l != nil {
			limit = *l
		}
		line("   Task History Retention Limit:", limit)
		fmt.Fprintln(out, "  Raft:")
		line("   Snapshot Interval:", c.Spec.Raft.SnapshotInterval)
		if k := c.Spec.Raft.KeepOldSnapshots; k != nil {
			line("   Number of Old Snapshots to Retain:", *k)
		}
		line("   Heartbeat Tick:", c.Spec.Raft.HeartbeatTick)
		line("   Election Tick:", c.Spec.Raft.ElectionTick)
		fmt.Fprintln(out, "  Dispatcher:")
		line("   Heartbeat Period:", units.HumanDuration(c.Spec.Dispatcher.HeartbeatPeriod))
		fmt.Fprintln(out, "  CA Configuration:")
		line("   Expiry Duration:", units.HumanDuration(c.Spec.CAConfig.NodeCertExpiry))
		if v, ok := c.Spec.Labels[nodeDownRemovalLabel]; ok {
			line("  Node Down Removal:", v)
		}
		line("  Autolock Managers:", c.Spec.EncryptionConfig.AutoLockManagers)
		line("  Root Rotation In Progress:", c.RootRotationInProgress)
	}
	if si.NodeAddr != "" {
		line("  Node Address:", si.NodeAddr)
	}
	if len(si.RemoteManagers) > 0 {
		addrs := make([]string, 0, len(si.RemoteManagers))
		for _, p := range si.RemoteManagers {
			addrs = append(addrs, p.Addr)
		}
		sort.Slice(addrs, func(i, j int) bool { return naturalLess(addrs[i], addrs[j]) })
		fmt.Fprintln(out, "  Manager Addresses:")
		for _, a := range addrs {
			fmt.Fprintf(out, "   %s\n", a)
		}
	}
}
