package daemon

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/spf13/pflag"

	"github.com/flotilla-org/flotilla/internal/gce"
	"github.com/flotilla-org/flotilla/manager"
)

// BootstrapConfig is how a node forms or joins its swarm by itself.
type BootstrapConfig struct {
	Provider      string // "" (by hand) or "gce"
	Role          string // manager or worker; "" lets the provider decide
	ListenAddr    string // cluster port to listen on
	AdvertiseAddr string // cluster address others dial; "" lets the provider decide
}

func addBootstrapFlags(f *pflag.FlagSet, c *BootstrapConfig) {
	f.StringVar(&c.Provider, "bootstrap", "", "form or join a swarm without 'swarm init/join': gce (Google Compute Engine project metadata; see docs/deploy-gce.md)")
	f.StringVar(&c.Role, "role", "", "with --bootstrap or --join: join as manager or worker (--bootstrap: default the flotilla-role attribute, else worker; --join with --bootstrap-token: default manager with --bootstrap-expect, else worker)")
	f.StringVar(&c.ListenAddr, "listen-addr", "", "with --bootstrap or --join: cluster port address to listen on (default 0.0.0.0:2377); on a node already in a swarm: move it to this address")
	f.StringVar(&c.AdvertiseAddr, "advertise-addr", "", "with --bootstrap or --join: cluster address other nodes dial (--bootstrap default: the instance's internal IP and the listen port); on a node already in a swarm: advertise this address from now on, the managers follow")
}

// gceBoot is what --bootstrap gce learned at start.
type gceBoot struct {
	settings gce.Settings
	md       *gce.Metadata
	compute  *gce.Compute
}

// prepareBootstrap reads the provider's settings before the node starts,
// so a misconfiguration stops the daemon with a clear error, and arranges
// for the leader to publish the tokens and managers.
func (d *Daemon) prepareBootstrap(ctx context.Context) (*gceBoot, error) {
	switch d.cfg.Bootstrap.Provider {
	case "":
		c := d.cfg.Bootstrap
		// --listen-addr and --advertise-addr without --bootstrap move a
		// node already in a swarm (see relocate).
		if c.Role != "" && d.cfg.Join.Spec == "" {
			return nil, fmt.Errorf("--role goes with --bootstrap or --join; without them, give the role with 'swarm join' (worker or manager token)")
		}
		return nil, nil
	case "gce":
	default:
		return nil, fmt.Errorf("--bootstrap %q: the only provider is gce", d.cfg.Bootstrap.Provider)
	}
	md := gce.NewMetadata()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := md.LoadSettings(lctx, d.cfg.Bootstrap.Role)
	if err != nil {
		return nil, fmt.Errorf("--bootstrap gce: %w", err)
	}
	b := &gceBoot{settings: s, md: md, compute: gce.NewCompute(md, s.Project)}
	pub := &gce.Publisher{Compute: b.compute, Cluster: s.Cluster, Log: d.log}
	d.leaderLoops = append(d.leaderLoops, func(ctx context.Context, m *manager.Manager) {
		pub.Run(ctx, func() (gce.State, bool) { return leaderView(m) }, m.Store().Changed)
	})
	d.log.Info("GCE bootstrap settings", "project", s.Project, "instance", s.Instance, "ip", s.IP,
		"cluster", s.Cluster, "role", s.Role, "managers_expected", s.ManagersExpected)
	return b, nil
}

// startBootstrap brings the node into its cluster in the background; it
// does nothing once the node is in a swarm (e.g. after a restart).
func (d *Daemon) startBootstrap(b *gceBoot) {
	listen := d.cfg.Bootstrap.ListenAddr
	if listen == "" {
		listen = "0.0.0.0:" + DefaultClusterPort
	}
	listen = withPort(listen, DefaultClusterPort)
	advertise := d.cfg.Bootstrap.AdvertiseAddr
	if advertise == "" {
		_, port, _ := net.SplitHostPort(listen)
		advertise = net.JoinHostPort(b.settings.IP, port)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.bootstrapStop, d.bootstrapDone = cancel, make(chan struct{})
	run := &gce.Bootstrap{Settings: b.settings, MD: b.md, Compute: b.compute, Advertise: advertise, Log: d.log,
		Node: &bootNode{b: &backend{d: d}, listen: listen, advertise: advertise}}
	go func() {
		defer close(d.bootstrapDone)
		if err := run.Run(ctx); err == nil {
			d.log.Info("GCE bootstrap: this node is in its swarm")
		}
	}()
}

// bootNode is the daemon as the bootstrap sees it: init and join go
// through the same code as the API's.
type bootNode struct {
	b                 *backend
	listen, advertise string
}

func (n *bootNode) InSwarm() bool { return n.b.d.current() != nil }

func (n *bootNode) Init(ctx context.Context) error {
	_, err := n.b.SwarmInit(ctx, swarm.InitRequest{ListenAddr: n.listen, AdvertiseAddr: n.advertise})
	return err
}

func (n *bootNode) Join(ctx context.Context, token string, managers []string) error {
	return n.b.SwarmJoin(ctx, swarm.JoinRequest{ListenAddr: n.listen, AdvertiseAddr: n.advertise,
		RemoteAddrs: managers, JoinToken: token})
}

// leaderView is what the leader publishes: the join tokens and the cluster
// addresses of the managers that are up, the leader first.
func leaderView(m *manager.Manager) (gce.State, bool) {
	c := m.Store().Cluster()
	_, leaderAddr := m.Leader()
	if c == nil || leaderAddr == "" {
		return gce.State{}, false
	}
	st := gce.State{ManagerToken: c.ManagerToken, WorkerToken: c.WorkerToken, Leader: leaderAddr, Managers: []string{leaderAddr}}
	var others []string
	for _, n := range m.Nodes() {
		ms := n.ManagerStatus
		if ms == nil || ms.Leader || ms.Addr == leaderAddr {
			continue
		}
		if n.Status.State == swarm.NodeStateReady && ms.Reachability != swarm.ReachabilityUnreachable {
			others = append(others, ms.Addr)
		}
	}
	slices.Sort(others)
	st.Managers = append(st.Managers, others...)
	return st, true
}
