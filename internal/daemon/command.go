package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/manager/raftnode"
)

// NewCommand is `flotilla daemon`.
func NewCommand() *cobra.Command {
	var (
		cfg         Config
		logLevel    string
		raftTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a flotilla node",
		Long: `Run a flotilla node. It starts outside any swarm, like dockerd; 'swarm init'
or 'swarm join' against its API makes it a member, and it remembers its swarm
across restarts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)
			}
			cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			if len(cfg.Hosts) == 0 {
				cfg.Hosts = []string{"unix:///var/run/flotilla.sock"}
			}
			for i, h := range cfg.Hosts {
				if strings.HasPrefix(h, "/") {
					cfg.Hosts[i] = "unix://" + h
				}
			}
			if raftTimeout < 100*time.Millisecond || raftTimeout > time.Minute {
				return fmt.Errorf("--raft-heartbeat-timeout %s: use a duration between 100ms and 1m", raftTimeout)
			}
			if raftTimeout != raftnode.DefaultTiming.HeartbeatTimeout {
				cfg.Timing = raftnode.DefaultTiming
				cfg.Timing.HeartbeatTimeout, cfg.Timing.ElectionTimeout, cfg.Timing.LeaderLeaseTimeout = raftTimeout, raftTimeout, raftTimeout
			}
			d, err := New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := d.Start(ctx); err != nil {
				return err
			}
			<-ctx.Done()
			cfg.Log.Info("shutting down")
			d.Stop()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/flotilla", "where the node keeps its state")
	f.StringArrayVarP(&cfg.Hosts, "host", "H", nil, "API address to listen on: unix:///path or tcp://127.0.0.1:PORT (repeatable; default unix:///var/run/flotilla.sock)")
	f.StringVar(&cfg.Hostname, "hostname", "", "hostname this node reports (default: the machine's)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.DurationVar(&raftTimeout, "raft-heartbeat-timeout", raftnode.DefaultTiming.HeartbeatTimeout,
		"how long a manager goes without hearing from the leader before it calls an election (also the leader's lease); failover takes about twice this. Raise it for managers on overloaded machines or slow links")
	f.StringVar(&cfg.Drivers.Default, "default-driver", "", "driver for tasks that name none: docker or process (default: docker when a Docker Engine answers, else process)")
	f.StringVar(&cfg.Drivers.DockerHost, "docker-host", "", "Docker Engine address for the docker driver (default unix:///var/run/docker.sock; DOCKER_HOST is ignored)")
	f.BoolVar(&cfg.Drivers.NoDocker, "no-docker", false, "do not offer the docker driver on this node")
	f.BoolVar(&cfg.Drivers.Fake, "fake-driver", false, "offer the in-memory fake driver (tests and benchmarks)")
	_ = f.MarkHidden("fake-driver")
	addBootstrapFlags(f, &cfg.Bootstrap)
	return cmd
}
