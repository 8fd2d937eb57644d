package bench

import (
	"fmt"
	"io"
	"net/http"
	_ "net/http/pprof" // profiles of the bench process, on FLOTILLA_BENCH_PPROF
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// NewCommand is `flotilla bench`.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure flotilla on this machine (starts its own daemons on 127.0.0.1)",
		// Ctrl-C ends the run through its context, so the daemons,
		// containers and images it made are still removed.
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			cmd.SetContext(ctx)
			cobra.OnFinalize(stop)
		}}
	var rounds int
	var dir string
	failover := &cobra.Command{
		Use:   "failover",
		Short: "Kill -9 the leader of a 3-manager sandbox repeatedly; report time to the next successful write and to the node showing Down",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, dir, cleanup, err := setup(dir)
			if err != nil {
				return err
			}
			defer cleanup()
			res, err := RunFailover(cmd.Context(), FailoverOptions{Binary: bin, Dir: dir, Rounds: rounds, Out: cmd.OutOrStdout()})
			if len(res) > 0 {
				var w, d []time.Duration
				for _, r := range res {
					w = append(w, r.WriteAfter)
					d = append(d, r.DownAfter)
				}
				wm, ww := Summary(w)
				dm, dw := Summary(d)
				fmt.Fprintf(cmd.OutOrStdout(), "\n%d rounds\nwrite after leader kill -9: median %v, worst %v\ndead node shown Down:      median %v, worst %v\n",
					len(res), wm.Round(time.Millisecond), ww.Round(time.Millisecond), dm.Round(time.Millisecond), dw.Round(time.Millisecond))
			}
			return err
		},
	}
	failover.Flags().IntVar(&rounds, "rounds", 10, "how many times to kill the leader")
	failover.Flags().StringVar(&dir, "dir", "", "working directory (default: a new temporary one)")
	cmd.AddCommand(failover, newConvergeCommand(), newRecoveryCommand(), newEngineCommand(), newMeshCommand(), newBackendCommand())
	return cmd
}

func newMeshCommand() *cobra.Command {
	var o MeshOptions
	var dir string
	var dockerSwarm bool
	cmd := &cobra.Command{
		Use:   "mesh",
		Short: "A manager and a worker: HTTP requests and a bulk stream sent to a task directly, through its node's routing mesh and relayed through another node's; then task deaths timed out of rotation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, dir, cleanup, err := setup(dir)
			if err != nil {
				return err
			}
			defer cleanup()
			if dockerSwarm {
				return dockerMesh(cmd, bin, o)
			}
			o.Binary, o.Dir, o.Out = bin, dir, cmd.OutOrStdout()
			res, err := RunMesh(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			pct := func(a, b float64) float64 { return 100 * a / b }
			fmt.Fprintf(out, "\nthrough the mesh, as a share of direct (%d clients, keep-alive, 1 KiB answers; medians of %d):\n", o.Clients, max(o.Repeat, 1))
			fmt.Fprintf(out, "  same node: %5.1f%% of requests/s, p50 +%v, p99 +%v; bulk %5.1f%%\n", pct(res.Local.Rate, res.Direct.Rate),
				(res.Local.P50 - res.Direct.P50).Round(time.Microsecond), (res.Local.P99 - res.Direct.P99).Round(time.Microsecond), pct(res.BulkLocal, res.BulkDirect))
			between := "relayed:"
			if o.Hosts {
				between = "other node:"
			}
			fmt.Fprintf(out, "  %-11s %5.1f%% of requests/s, p50 +%v, p99 +%v; bulk %5.1f%%\n", between, pct(res.Relay.Rate, res.Direct.Rate),
				(res.Relay.P50 - res.Direct.P50).Round(time.Microsecond), (res.Relay.P99 - res.Direct.P99).Round(time.Microsecond), pct(res.BulkRelay, res.BulkDirect))
			if len(res.Rotation) > 0 {
				m, w := Summary(res.Rotation)
				fmt.Fprintf(out, "task killed -> out of rotation: median %v, worst %v over %d rounds; %d requests failed meanwhile\n",
					m.Round(time.Millisecond), w.Round(time.Millisecond), len(res.Rotation), res.Failed)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Clients, "clients", 16, "concurrent keep-alive clients")
	cmd.Flags().DurationVar(&o.Duration, "duration", 5*time.Second, "length of each measurement")
	cmd.Flags().IntVar(&o.Rounds, "rounds", 5, "task deaths to time")
	cmd.Flags().IntVar(&o.Repeat, "repeat", 3, "measure each path this many times, in turn, and report the medians")
	cmd.Flags().BoolVar(&o.Hosts, "hosts", false, "run the nodes on two separate hosts made for the run (network namespaces; needs root) with --mesh-kernel-between-nodes, loaded from this machine: the kernel path between nodes")
	cmd.Flags().StringVar(&dir, "dir", "", "working directory (default: a new temporary one)")
	cmd.Flags().BoolVar(&dockerSwarm, "docker-swarm", false, "instead, the same load through Docker's own routing mesh: puts the local engine ("+dockerEngineHost+", DOCKER_HOST ignored) in swarm mode for the run and always leaves it; refuses an engine already in swarm mode")
	return cmd
}

// dockerMesh is `bench mesh --docker-swarm`.
func dockerMesh(cmd *cobra.Command, bin string, o MeshOptions) error {
	out := cmd.OutOrStdout()
	res, err := RunDockerMesh(cmd.Context(), DockerMeshOptions{Binary: bin, Clients: o.Clients, Duration: o.Duration, Out: out})
	if len(res.Targets) == 0 || res.Targets[0].Err != nil || res.Targets[0].Load.Rate == 0 {
		return err
	}
	d := res.Targets[0]
	pct := func(a, b float64) float64 { return 100 * a / b }
	fmt.Fprintf(out, "\nDocker %s, as a share of direct (%d clients, keep-alive, 1 KiB answers):\n", res.Engine, o.Clients)
	for _, t := range res.Targets[1:] {
		switch {
		case t.Err != nil:
			fmt.Fprintf(out, "  %-17s not measured: %v\n", t.Name+":", t.Err)
		case t.Load.Rate > 0:
			fmt.Fprintf(out, "  %-17s %5.1f%% of requests/s, p50 %v, p99 %v; bulk %5.1f%%\n", t.Name+":", pct(t.Load.Rate, d.Load.Rate),
				plusMinus(t.Load.P50-d.Load.P50), plusMinus(t.Load.P99-d.Load.P99), pct(t.Bulk, d.Bulk))
		}
	}
	return err
}

func newConvergeCommand() *cobra.Command {
	var nodes, replicas int
	var dir string
	var heartbeat, timeout time.Duration
	var daemonArgs []string
	cmd := &cobra.Command{
		Use:   "converge",
		Short: "3 manager processes + simulated workers (fake driver): time from service create to every replica running",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, dir, cleanup, err := setup(dir)
			if err != nil {
				return err
			}
			defer cleanup()
			if addr := os.Getenv("FLOTILLA_BENCH_PPROF"); addr != "" {
				// Profile the simulated nodes' side (loopback only).
				go func() { _ = http.ListenAndServe(addr, nil) }()
			}
			res, err := RunConverge(cmd.Context(), ConvergeOptions{Binary: bin, Dir: dir, Nodes: nodes, Replicas: replicas, Heartbeat: heartbeat, DaemonArgs: daemonArgs, Timeout: timeout, Out: cmd.OutOrStdout()})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\n%d replicas on %d simulated nodes: converged in %v (%.0f tasks/s)\nleader memory: idle %v\n  after convergence %v\n",
				replicas, nodes, res.Converge.Round(time.Millisecond), float64(replicas)/res.Converge.Seconds(),
				res.LeaderIdle, res.Leader)
			return nil
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 1000, "simulated worker nodes")
	cmd.Flags().DurationVar(&heartbeat, "heartbeat", 5*time.Second, "node heartbeat period during the run (swarm's default; 0 keeps flotilla's 1s)")
	cmd.Flags().IntVar(&replicas, "replicas", 10000, "replicas of the service")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the nodes to be ready, and then for convergence")
	cmd.Flags().StringVar(&dir, "dir", "", "working directory (default: a new temporary one)")
	cmd.Flags().StringArrayVar(&daemonArgs, "daemon-arg", nil, "extra flag for every manager daemon, e.g. --daemon-arg=--raft-heartbeat-timeout=2s (repeatable)")
	return cmd
}

func newRecoveryCommand() *cobra.Command {
	var rounds, replicas int
	var dir string
	cmd := &cobra.Command{
		Use:   "recovery",
		Short: "3 managers + 3 workers (process driver, default settings): time from kill -9 of a worker to the service back at full count",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, dir, cleanup, err := setup(dir)
			if err != nil {
				return err
			}
			defer cleanup()
			res, err := RunRecovery(cmd.Context(), RecoveryOptions{Binary: bin, Dir: dir, Rounds: rounds, Replicas: replicas, Out: cmd.OutOrStdout()})
			if len(res) > 0 {
				med, worst := Summary(res)
				fmt.Fprintf(cmd.OutOrStdout(), "\n%d rounds: back at full count after median %v, worst %v\n", len(res), med.Round(time.Millisecond), worst.Round(time.Millisecond))
			}
			return err
		},
	}
	cmd.Flags().IntVar(&rounds, "rounds", 5, "how many workers to kill, one after another")
	cmd.Flags().IntVar(&replicas, "replicas", 12, "replicas of the service")
	cmd.Flags().StringVar(&dir, "dir", "", "working directory (default: a new temporary one)")
	return cmd
}

func newEngineCommand() *cobra.Command {
	var o EngineOptions
	var dir string
	cmd := &cobra.Command{
		Use:   "engine",
		Short: "The real Docker Engine: time for N replicas of a small container to run and to go, straight through the Engine API, through flotilla's docker driver on one node and (--docker-swarm) through Docker's swarm mode",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, dir, cleanup, err := setup(dir)
			if err != nil {
				return err
			}
			defer cleanup()
			o.Binary, o.Dir, o.Out = bin, dir, cmd.OutOrStdout()
			res, err := RunEngine(cmd.Context(), o)
			printEngine(cmd.OutOrStdout(), o, res)
			return err
		},
	}
	cmd.Flags().IntVar(&o.Replicas, "replicas", 100, "replicas of the service (containers)")
	cmd.Flags().IntVar(&o.Rounds, "rounds", 3, "measurements of each row")
	cmd.Flags().IntSliceVar(&o.Concurrency, "concurrency", []int{1, 2, 4, 8, 16}, "containers the engine row creates and starts at once, one row per level (0: no engine row)")
	cmd.Flags().BoolVar(&o.DockerSwarm, "docker-swarm", false, "add Docker's own swarm mode: puts the local engine ("+dockerEngineHost+") in swarm mode for the run and always leaves it; refuses an engine already in swarm mode")
	cmd.Flags().StringVar(&o.DockerHost, "docker-host", "", "Docker Engine address (default "+dockerEngineHost+")")
	cmd.Flags().StringVar(&dir, "dir", "", "working directory (default: a new temporary one)")
	return cmd
}

// printEngine prints RunEngine's rows side by side.
func printEngine(out io.Writer, o EngineOptions, res EngineResult) {
	rows := res.Limit
	if len(res.Flotilla.Up) > 0 {
		rows = append(rows, res.Flotilla)
	}
	if res.Swarm != nil && len(res.Swarm.Up) > 0 {
		rows = append(rows, *res.Swarm)
	}
	if len(rows) == 0 {
		return
	}
	limit, haveLimit := res.Fastest()
	lm, _ := Summary(limit.Up)
	fmt.Fprintf(out, "\n%d containers, Docker Engine %s, %d rounds (load average now %s)\n", o.Replicas, res.Engine, o.Rounds, loadAverage())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tall running: median\tworst\tremoved: median\tworst\trunning, of the limit")
	ms := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	for _, r := range rows {
		um, uw := Summary(r.Up)
		dm, dw := Summary(r.Down)
		share := ""
		if haveLimit {
			share = fmt.Sprintf("%.2fx", float64(um)/float64(lm))
		}
		name := r.Name
		if haveLimit && r.Name == limit.Name {
			name += " (limit)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, ms(um), ms(uw), ms(dm), ms(dw), share)
	}
	tw.Flush()
}

// setup finds this binary (the daemons the bench starts) and the working
// directory: dir, or a new temporary one removed by cleanup.
func setup(dir string) (bin, workDir string, cleanup func(), err error) {
	if bin, err = os.Executable(); err != nil {
		return "", "", nil, err
	}
	if dir != "" {
		return bin, dir, func() {}, nil
	}
	if dir, err = os.MkdirTemp("", "flotilla-bench-"); err != nil {
		return "", "", nil, err
	}
	return bin, dir, func() { os.RemoveAll(dir) }, nil
}
