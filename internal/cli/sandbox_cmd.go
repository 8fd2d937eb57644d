package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// The sandbox commands: flags and printing; the work is package sandbox's.

func newSandboxCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local multi-node cluster for experiments and tests",
		Long: "Run a local cluster: several flotilla daemons on this machine, each with its own\n" +
			"data directory, API socket and loopback cluster port, formed into one swarm\n" +
			"through the API, as a user would.",
		Args: groupArgs,
		RunE: showHelp,
	}
	cmd.AddCommand(newSandboxUpCommand(env), newSandboxDownCommand(env), newSandboxStatusCommand(env))
	return cmd
}

func newSandboxUpCommand(env *cliEnv) *cobra.Command {
	opts := sandbox.Options{Managers: sandbox.DefaultManagers, Workers: sandbox.DefaultWorkers, SampleService: true}
	cmd := &cobra.Command{
		Use:   "up [OPTIONS]",
		Short: "Start a local cluster",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		o := opts
		o.Out = out
		sb, err := sandbox.Up(ctx, o)
		if err != nil {
			if ctx.Err() != nil && cmd.Context().Err() == nil {
				return errors.New("sandbox up interrupted; the daemons it had started were stopped")
			}
			return err
		}
		prog := sandbox.RunnableProg(rootName(cmd))
		fmt.Fprintf(out, "\nSandbox is up: %d %s and %d %s.\nState: %s; daemon logs: %s\n\n",
			len(sb.Managers()), plural(len(sb.Managers()), "manager"), len(sb.Workers()), plural(len(sb.Workers()), "worker"),
			filepath.Join(sb.Dir, sandbox.StateFile), filepath.Join(sb.Dir, "<node>", "daemon.log"))
		if api, err := newAPIClient(sb.Host()); err == nil {
			var table bytes.Buffer
			if listNodes(ctx, api, &table, nil, "", false) == nil {
				_, _ = table.WriteTo(out)
				fmt.Fprintln(out)
			}
			_ = api.Close()
		}
		if o.SampleService {
			if api, err := newAPIClient(sb.Host()); err == nil {
				var table bytes.Buffer
				if sandbox.PrintSampleTasks(ctx, api, sb, &table) == nil {
					fmt.Fprintf(out, "The sample stack %q (%s): %s runs one task per node, %s is its back end:\n\n",
						sandbox.SampleStack, sandbox.SampleComposePath, sandbox.SampleServiceName, sandbox.SampleBackendName)
					_, _ = table.WriteTo(out)
					if len(sb.Nodes) > 0 {
						fmt.Fprintf(out, "\nTry it (again and again: the answers come from every task):\n\n    curl http://%s/\n\n",
							net.JoinHostPort(sb.Nodes[len(sb.Nodes)-1].PublishHost, strconv.Itoa(sandbox.SamplePublishedPort)))
					}
				}
				_ = api.Close()
			}
		}
		fmt.Fprintf(out, "Point the %s CLI at it:\n\n    export %s=%s\n    %s node ls\n", rootName(cmd), HostEnvVar, sb.Host(), prog)
		if o.SampleService {
			fmt.Fprintf(out, "    %s stack services %s\n    %s service ps %s\n", prog, sandbox.SampleStack, prog, sandbox.SampleServiceName)
		}
		fmt.Fprintln(out)
		fmt.Fprintf(out, "or the docker CLI:\n\n    export DOCKER_HOST=%s\n    docker node ls\n\n", sb.Host())
		fmt.Fprintf(out, "Stop it with: %s sandbox down%s\n", prog, sandbox.DirFlag(sb.Dir))
		return nil
	})
	flags := cmd.Flags()
	flags.IntVar(&opts.Managers, "managers", sandbox.DefaultManagers, "Number of manager daemons")
	flags.IntVar(&opts.Workers, "workers", sandbox.DefaultWorkers, "Number of worker daemons")
	flags.StringVar(&opts.Dir, "dir", sandbox.DefaultDir(), "Directory for the sandbox's state, data and logs")
	flags.StringArrayVar(&opts.DaemonArgs, "daemon-arg", nil, "Extra flag for every daemon (repeatable), e.g. --daemon-arg=--log-level=debug")
	flags.DurationVar(&opts.Timeout, "timeout", sandbox.DefaultTimeout, "How long to wait for each daemon and for the cluster to become ready")
	flags.BoolVar(&opts.KeepOnFailure, "keep-on-failure", false, "Keep the directory (logs) when starting fails")
	flags.BoolVar(&opts.SampleService, "sample-service", true, "Deploy the sample stack ("+sandbox.SampleComposePath+")")
	flags.StringVar(&opts.SampleDriver, "sample-driver", "", "Task driver of the sample stack: docker or process (default: docker when every node runs Docker, else process)")
	return cmd
}

func newSandboxDownCommand(env *cliEnv) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down [OPTIONS]",
		Short: "Stop the local cluster and remove its directory",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		found, err := sandbox.TearDown(abs, out)
		if err != nil {
			return err
		}
		if !found {
			fmt.Fprintf(out, "No sandbox in %s; nothing to do.\n", abs)
			return nil
		}
		fmt.Fprintf(out, "Sandbox in %s stopped and removed.\n", abs)
		return nil
	})
	cmd.Flags().StringVar(&dir, "dir", sandbox.DefaultDir(), "Directory of the sandbox")
	return cmd
}

func newSandboxStatusCommand(env *cliEnv) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "status [OPTIONS]",
		Short: "Show the daemons of the local cluster",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		abs, err := filepath.Abs(dir)
		if err != nil {
			return err
		}
		sb, err := sandbox.Load(abs)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(out, "No sandbox in %s.\n", abs)
			return nil
		}
		if err != nil {
			return err
		}
		rows := make([]map[string]string, 0, len(sb.Nodes))
		for _, n := range sb.Nodes {
			state := "stopped"
			if n.Alive() {
				state = "running"
			}
			rows = append(rows, map[string]string{
				"Name": n.Name, "Role": n.Role, "PID": strconv.Itoa(n.PID), "State": state,
				"ClusterAddr": n.SwarmAddr, "Host": n.Host,
			})
		}
		header := map[string]string{"Name": "NAME", "Role": "ROLE", "PID": "PID", "State": "STATE", "ClusterAddr": "CLUSTER ADDRESS", "Host": "API"}
		lf := listFormat{table: true, text: "{{.Name}}\t{{.Role}}\t{{.PID}}\t{{.State}}\t{{.ClusterAddr}}\t{{.Host}}"}
		return writeList(out, lf, header, rows)
	})
	cmd.Flags().StringVar(&dir, "dir", sandbox.DefaultDir(), "Directory of the sandbox")
	return cmd
}
