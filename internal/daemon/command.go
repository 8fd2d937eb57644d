package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/manager/raftnode"
)

// NewCommand is `flotilla daemon`.
func NewCommand() *cobra.Command {
	var (
		cfg         Config
		logLevel    string
		logFormat   string
		raftTimeout time.Duration
		memLimit    string
		gcPercent   int
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a flotilla node",
		Long: `Run a flotilla node. It starts outside any swarm, like dockerd; 'swarm init'
or 'swarm join' against its API makes it a member, and it remembers its swarm
across restarts.

With --join SPEC a daemon in no swarm joins by itself: it asks SPEC where the
managers are (addresses, dns:NAME, dns+srv:NAME, file:PATH or
provider=NAME ...) and tries each until one admits it, retrying while none
answers. With --bootstrap-expect N and a shared --bootstrap-token, N managers
started together form the swarm once all of them are there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			root, err := newLogger(os.Stderr, logFormat, logLevel)
			if err != nil {
				return err
			}
			cfg.Log = root
			// Lines from the standard log package and slog's default
			// (libraries, net/http) land in the same format.
			slog.SetDefault(withComponent(root, "daemon"))
			if logFormat == "json" {
				// A log shipper reads every line as JSON, the error that
				// stops the daemon too (cobra would print it as text).
				defer func() {
					if err != nil {
						slog.Error("cannot run the daemon", "err", err)
						cmd.SilenceErrors = true
					}
				}()
			}
			if cfg.Join.BootstrapToken == "" {
				cfg.Join.BootstrapToken = os.Getenv("FLOTILLA_BOOTSTRAP_TOKEN")
			}
			if cfg.MeshBetweenNodes && cfg.NoMeshKernel {
				return fmt.Errorf("--mesh-kernel-between-nodes sends connections through nat rules, which --no-mesh-kernel turns off: give one of them")
			}
			if cfg.Join.Spec != "" && cfg.Bootstrap.Provider != "" {
				return fmt.Errorf("--join and --bootstrap %s both bring the node into a swarm: give one of them", cfg.Bootstrap.Provider)
			}
			// --role, --listen-addr and --advertise-addr serve --join as
			// they serve --bootstrap.
			cfg.Join.Role = swarm.NodeRole(cfg.Bootstrap.Role)
			cfg.Join.ListenAddr, cfg.Join.AdvertiseAddr = cfg.Bootstrap.ListenAddr, cfg.Bootstrap.AdvertiseAddr
			if err := cfg.Join.Check(); err != nil {
				return err
			}
			if len(cfg.Hosts) == 0 {
				cfg.Hosts = []string{"unix:///var/run/flotilla.sock"}
			}
			for i, h := range cfg.Hosts {
				if strings.HasPrefix(h, "/") {
					cfg.Hosts[i] = "unix://" + h
				}
			}
			if err := cfg.APITLS.check(cfg.Hosts); err != nil {
				return err
			}
			if err := cfg.APITLS.checkUIAddr(cfg.UIAddr); err != nil {
				return err
			}
			if raftTimeout < 100*time.Millisecond || raftTimeout > time.Minute {
				return fmt.Errorf("--raft-heartbeat-timeout %s: use a duration between 100ms and 1m", raftTimeout)
			}
			if raftTimeout != raftnode.DefaultTiming.HeartbeatTimeout {
				cfg.Timing = raftnode.DefaultTiming
				cfg.Timing.HeartbeatTimeout, cfg.Timing.ElectionTimeout, cfg.Timing.LeaderLeaseTimeout = raftTimeout, raftTimeout, raftTimeout
			}
			limit, err := applyMemoryLimit(memLimit, cmd.Flags().Changed("memory-limit"))
			if err != nil {
				return err
			}
			autoGC, err := applyGCPercent(gcPercent, cmd.Flags().Changed("gc-percent"))
			if err != nil {
				return err
			}
			if limit > 0 && limit < math.MaxInt64 {
				cfg.Log.Info("soft memory limit", "bytes", limit)
			}
			d, err := New(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if autoGC {
				go tuneGC(ctx)
			}
			if err := d.Start(ctx); err != nil {
				return err
			}
			<-ctx.Done()
			slog.Info("shutting down")
			d.Stop()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/flotilla", "where the node keeps its state")
	f.StringArrayVarP(&cfg.Hosts, "host", "H", nil, "API address to listen on: unix:///path or tcp://IP:PORT (tcp needs --tlsverify or --insecure-tcp; repeatable; default unix:///var/run/flotilla.sock)")
	f.BoolVar(&cfg.APITLS.Verify, "tlsverify", false, "serve tcp:// hosts with TLS and require client certificates signed by --tlscacert")
	f.StringVar(&cfg.APITLS.CACert, "tlscacert", "", "CA certificate (PEM) that client certificates must be signed by")
	f.StringVar(&cfg.APITLS.Cert, "tlscert", "", "the daemon's TLS certificate (PEM) for tcp:// hosts")
	f.StringVar(&cfg.APITLS.Key, "tlskey", "", "the daemon's TLS key (PEM) for tcp:// hosts")
	f.BoolVar(&cfg.APITLS.InsecureTCP, "insecure-tcp", false, "allow a tcp:// host on a loopback address WITHOUT TLS or authentication: every local user then controls the cluster")
	f.StringVar(&cfg.UIAddr, "ui-addr", "", "also serve the read-only web UI on this TCP HOST:PORT (it is always at /ui/ on the API socket); needs --tlsverify, or --insecure-tcp on a loopback address")
	f.StringVar(&cfg.Hostname, "hostname", "", "hostname this node reports (default: the machine's)")
	f.StringVar(&cfg.PublishAddr, "publish-addr", "", "address the routing mesh listens on for published ports (default: all of the node's addresses)")
	f.BoolVar(&cfg.NoMeshKernel, "no-mesh-kernel", false, "send every published port's connections through the routing mesh in user space, not those to this node's own tasks through nat rules (slower; for hosts where the rules cannot be made)")
	f.BoolVar(&cfg.MeshBetweenNodes, "mesh-kernel-between-nodes", false, "send published ports' connections to other nodes' tasks through nat rules as well, unencrypted (as Docker's ingress network by default), instead of through the cluster port's mutual TLS; much faster, for a network between the nodes you trust (docs/design/networking.md)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "also serve the Prometheus metrics (and nothing else) over plain HTTP on this HOST:PORT; bind it to a private address (they are always on the API socket at /metrics)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text (key=value) or json (one object a line); every line has the component and, in a swarm, the node's ID")
	f.DurationVar(&raftTimeout, "raft-heartbeat-timeout", raftnode.DefaultTiming.HeartbeatTimeout,
		"how long a manager goes without hearing from the leader before it calls an election (also the leader's lease); failover takes about twice this. Raise it for managers on overloaded machines or slow links")
	f.IntVar(&gcPercent, "gc-percent", DefaultGCPercent, "how far the daemon's heap grows past what the last collection kept before the next one, in percent: lower holds less memory for more collector CPU; 0 lets the daemon choose from its heap, 50 while it is small and 100 once large (default: GOGC when set)")
	f.StringVar(&memLimit, "memory-limit", DefaultMemoryLimit, "soft limit on the daemon's Go memory (heap, stacks): its garbage collector works harder, and gives memory back, as the process nears it; a size such as 256MiB, 0 for none (default: GOMEMLIMIT when set)")
	f.StringVar(&cfg.Drivers.Default, "default-driver", "", "driver for tasks that name none: docker or process (default: docker when a Docker Engine answers, else process)")
	f.StringVar(&cfg.Drivers.DockerHost, "docker-host", "", "Docker Engine address for the docker driver (default unix:///var/run/docker.sock; DOCKER_HOST is ignored)")
	f.BoolVar(&cfg.Drivers.NoDocker, "no-docker", false, "do not offer the docker driver on this node")
	f.BoolVar(&cfg.Drivers.Fake, "fake-driver", false, "offer the in-memory fake driver (tests and benchmarks)")
	_ = f.MarkHidden("fake-driver")
	addBootstrapFlags(f, &cfg.Bootstrap)
	f.StringVar(&cfg.Join.Spec, "join", "", "join a swarm by itself, finding its managers through this discovery spec: ADDR[,ADDR...], dns:NAME[:PORT], dns+srv:NAME, file:PATH or 'provider=NAME key=value ...'")
	f.StringVar(&cfg.Join.Token, "join-token", "", "join token for --join (from 'swarm join-token'); it decides the role")
	f.StringVar(&cfg.Join.BootstrapToken, "bootstrap-token", "", "secret shared by the nodes that form a swarm together: they derive its join tokens from it (or FLOTILLA_BOOTSTRAP_TOKEN)")
	f.IntVar(&cfg.Join.BootstrapExpect, "bootstrap-expect", 0, "with --join and --bootstrap-token: form a new swarm once this many managers answer")
	return cmd
}
