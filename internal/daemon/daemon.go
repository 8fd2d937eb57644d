// Package daemon wires one flotilla node: its data dir, the Engine API
// listeners, and — once it is in a swarm — the cluster port, the manager
// role (Raft and state) and the agent session.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flotilla-org/flotilla/agent/discovery"
	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/internal/engineapi"
	"github.com/flotilla-org/flotilla/manager"
	"github.com/flotilla-org/flotilla/manager/raftnode"
)

// Config is how the daemon was started.
type Config struct {
	DataDir  string
	Hosts    []string     // unix:///path or tcp://127.0.0.1:port
	APITLS   APITLSConfig // protects tcp:// Hosts
	UIAddr   string       // TCP HOST:PORT serving the web UI alone, protected as tcp:// Hosts
	Hostname string
	// PublishAddr is where published ports listen ("" for all addresses).
	PublishAddr string
	// NoMeshKernel keeps published ports' connections to the node's own
	// tasks in user space (no DNAT rules).
	NoMeshKernel bool
	// MeshBetweenNodes sends published ports' connections to other
	// nodes' tasks through nat rules too, in plain text, instead of the
	// cluster port's mutual TLS.
	MeshBetweenNodes bool
	Timing           raftnode.Timing // zero: defaults
	Drivers          DriverConfig
	Join             JoinConfig // join or form a swarm by itself at start
	// Log is the root logger: it must carry no component attribute,
	// which each subsystem adds (logging.go).
	Log *slog.Logger
	// Bootstrap forms or joins a swarm without a human (--bootstrap).
	Bootstrap BootstrapConfig
	// MetricsAddr is a host:port serving only the Prometheus metrics over
	// plain HTTP ("" for none; they are on the API socket as well).
	MetricsAddr string
}

// Daemon is one running node.
type Daemon struct {
	cfg   Config
	paths paths
	root  *slog.Logger // cfg.Log: no component, no node
	log   *slog.Logger // component=daemon

	// opMu serialises swarm init, join and leave.
	opMu sync.Mutex
	// mu guards node: swarm init/join/leave replace it.
	mu   sync.Mutex
	node *clusterNode
	// locked is set while this manager waits for 'swarm unlock'.
	locked *lockedNode
	// lastErr is shown in info's Swarm.Error (e.g. removed from the swarm).
	lastErr string

	// joinCancel stops a --join still looking for managers; joinDone
	// closes when it has.
	joinCancel context.CancelFunc
	joinDone   chan struct{}

	servers    []*http.Server
	apiHandler http.Handler
	metrics    *daemonMetrics

	drivers       map[string]driver.Driver
	defaultDriver string
	// disc is the current node's service discovery, for the docker
	// driver's hooks (read without d.mu: they run in task starts that a
	// leave holding d.mu waits for).
	disc atomic.Pointer[discovery.Discovery]

	// leaderLoops run on this node's manager while it leads.
	leaderLoops []func(context.Context, *manager.Manager)
	// bootstrapStop ends the --bootstrap loop; bootstrapDone when it has.
	bootstrapStop context.CancelFunc
	bootstrapDone chan struct{}

	// closing closes when the API servers shut down, so that event
	// streams end instead of holding the shutdown up (events.go).
	closingOnce, closeOnce sync.Once
	closing                chan struct{}
}

// New prepares a daemon; Start makes it serve.
func New(cfg Config) (*Daemon, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		cfg.Hostname = h
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	d := &Daemon{cfg: cfg, paths: newPaths(cfg.DataDir), root: cfg.Log, log: withComponent(cfg.Log, "daemon")}
	d.metrics = newDaemonMetrics(d)
	return d, nil
}

// Start rejoins the swarm this node belongs to (if any) and serves the API.
func (d *Daemon) Start(ctx context.Context) error {
	d.servePprof()
	d.drivers, d.defaultDriver = d.openDrivers(ctx)
	boot, err := d.prepareBootstrap(ctx)
	if err != nil {
		return err
	}
	d.apiHandler = engineapi.NewHandlerWithMetrics(&backend{d: d}, d.metrics.api, withComponent(d.root, "engineapi"))
	st, err := d.paths.loadState()
	if err != nil {
		return err
	}
	if st == nil && boot == nil && d.cfg.Join.Spec == "" && (d.cfg.Bootstrap.ListenAddr != "" || d.cfg.Bootstrap.AdvertiseAddr != "") {
		return fmt.Errorf("--listen-addr and --advertise-addr without --bootstrap move a node that is already in a swarm, and this node is in none; give them to 'swarm init' or 'swarm join'")
	}
	if st != nil {
		certs, err := d.paths.loadCerts()
		if err != nil {
			return fmt.Errorf("swarm certificates in %s: %w", d.paths.swarmDir(), err)
		}
		providerIP := ""
		if boot != nil {
			providerIP = boot.settings.IP
		}
		moved, err := d.relocate(st, providerIP)
		if err != nil {
			return fmt.Errorf("new cluster address: %w", err)
		}
		if moved {
			if err := d.paths.saveState(st); err != nil {
				return err
			}
		}
		if err := d.resume(st, certs); err != nil {
			return err
		}
	}
	if st == nil && d.cfg.Join.Spec != "" {
		jctx, cancel := context.WithCancel(context.Background())
		d.joinCancel, d.joinDone = cancel, make(chan struct{})
		go func() {
			defer close(d.joinDone)
			d.autoJoin(jctx)
		}()
	}
	handler := d.metrics.withMetrics(d.withUI(d.apiHandler))
	if err := d.serveMetricsAddr(); err != nil {
		d.Stop()
		return err
	}
	tlsConf, err := d.cfg.APITLS.serverConfig()
	if err == nil {
		err = d.serveUI(tlsConf)
	}
	if err != nil {
		d.Stop()
		return err
	}
	for _, h := range d.cfg.Hosts {
		ln, err := listen(h, tlsConf != nil)
		if err != nil {
			d.Stop()
			return err
		}
		if strings.HasPrefix(h, "tcp://") {
			ln = d.wrapTCP(h, ln, tlsConf)
		}
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
		srv.RegisterOnShutdown(d.endStreams)
		d.servers = append(d.servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("API listener stopped", "host", h, "err", err)
			}
		}()
		d.log.Info("API listening", "host", h)
	}
	if boot != nil {
		d.startBootstrap(boot)
	}
	return nil
}

// Stop stops serving and leaves the cluster node running state on disk.
func (d *Daemon) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d.bootstrapStop != nil {
		d.bootstrapStop()
		<-d.bootstrapDone // it may be starting a node: let it finish first
	}
	for _, s := range d.servers {
		_ = s.Shutdown(ctx)
	}
	if d.joinCancel != nil {
		d.joinCancel()
		<-d.joinDone
	}
	d.mu.Lock()
	n := d.node
	d.node = nil
	d.mu.Unlock()
	if n != nil {
		n.stop()
	}
}

// listen opens host; a plain (withTLS false) tcp:// host must be loopback.
func listen(host string, withTLS bool) (net.Listener, error) {
	switch {
	case strings.HasPrefix(host, "unix://"):
		path := strings.TrimPrefix(host, "unix://")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		// A socket left by a killed daemon would block the bind.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another daemon; stop it or choose another -H", path)
		}
		_ = os.Remove(path)
		ln, err := net.Listen("unix", path)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", host, err)
		}
		_ = os.Chmod(path, 0o660)
		return ln, nil
	case strings.HasPrefix(host, "tcp://"):
		addr := strings.TrimPrefix(host, "tcp://")
		h, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("-H %s: %w", host, err)
		}
		ip := net.ParseIP(h)
		if !withTLS && h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("-H %s: without TLS (--insecure-tcp) the API only listens on loopback addresses (127.0.0.1, ::1); use --tlsverify to listen on other addresses", host)
		}
		return net.Listen("tcp", addr)
	}
	return nil, fmt.Errorf("-H %s: unsupported address; use unix:///path or tcp://127.0.0.1:PORT", host)
}

func (d *Daemon) setNode(n *clusterNode, errMsg string) {
	d.mu.Lock()
	d.node = n
	d.lastErr = errMsg
	d.mu.Unlock()
}

// current returns the running cluster node, or nil outside a swarm.
func (d *Daemon) current() *clusterNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.node
}
