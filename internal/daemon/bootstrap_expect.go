package daemon

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/discovery"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/security/ca"
)

// pathBootstrap answers "I am a manager waiting to form a swarm" on the
// cluster port of a node started with --bootstrap-expect. A node in a
// swarm answers nodeapi.PathCA instead; one that answers neither is down.
const pathBootstrap = "/rpc/bootstrap"

// bootstrapHello is pathBootstrap's answer.
type bootstrapHello struct {
	Addr   string // the node's advertise address
	Expect int
}

// bootstrapper forms a swarm from --bootstrap-expect managers that find
// one another through the same provider. While waiting it serves
// pathBootstrap on its cluster port (with a throwaway certificate: nothing
// secret travels there). The one initialiser is the manager with the lowest
// address of all those the provider lists, and only once all the expected
// managers answer; every other one only ever joins. So two nodes that see
// the same list can never both initialise.
type bootstrapper struct {
	d         *Daemon
	p         discovery.Provider
	listen    string
	advertise string
	tlsCfg    *tls.Config
	mux       *clusterport.Mux
	srv       *http.Server
}

func (d *Daemon) newBootstrapper(p discovery.Provider) (*bootstrapper, error) {
	listen, advertise, err := resolveAddrs(d.cfg.Join.ListenAddr, d.cfg.Join.AdvertiseAddr)
	if err != nil {
		return nil, err
	}
	throwaway, err := ca.NewRootCA("bootstrap")
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(throwaway.CertPEM, throwaway.KeyPEM)
	if err != nil {
		return nil, err
	}
	b := &bootstrapper{d: d, p: p, listen: listen, advertise: advertise,
		tlsCfg: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	return b, b.open()
}

// open serves pathBootstrap on the cluster port.
func (b *bootstrapper) open() error {
	mux, err := clusterport.Listen(b.listen, b.tlsCfg, b.d.log)
	if err != nil {
		return fmt.Errorf("cannot listen on %s for the cluster port: %w", b.listen, err)
	}
	h := http.NewServeMux()
	hello := bootstrapHello{Addr: b.advertise, Expect: b.d.cfg.Join.BootstrapExpect}
	h.HandleFunc("GET "+pathBootstrap, func(w http.ResponseWriter, _ *http.Request) { nodeapi.WriteJSON(w, hello) })
	h.HandleFunc("GET "+nodeapi.PathCA, func(w http.ResponseWriter, _ *http.Request) {
		nodeapi.WriteError(w, errdefs.ErrNotInSwarm)
	})
	b.mux = mux
	b.srv = clusterport.RPCServer(&http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ConnContext: clusterport.ConnContext})
	go func() { _ = b.srv.Serve(mux.Sub(clusterport.ProtoRPC)) }()
	return nil
}

// close frees the cluster port for the swarm's own listener.
func (b *bootstrapper) close() {
	if b.mux == nil {
		return
	}
	_ = b.srv.Close()
	_ = b.mux.Close()
	b.mux = nil
}

// step does one round: join a swarm some peer already has, or initialise
// it when this node is the one, or report what it waits for.
func (b *bootstrapper) step(ctx context.Context) error {
	jc := b.d.cfg.Join
	addrs, err := discover(ctx, b.p)
	if err != nil {
		return err
	}
	addrs = resolveHosts(ctx, addrs)
	var inSwarm, waiting []string
	for _, a := range addrs {
		if a == b.advertise {
			continue
		}
		switch probe(ctx, a, jc.BootstrapExpect) {
		case peerInSwarm:
			inSwarm = append(inSwarm, a)
		case peerWaiting:
			waiting = append(waiting, a)
		}
	}
	if len(inSwarm) > 0 {
		return b.withPortFree(func() error {
			err := b.d.joinDiscovered(ctx, b.p)
			if err == nil {
				b.d.log.Info("joined the swarm formed by --bootstrap-expect", "via", inSwarm)
			}
			return err
		})
	}
	if n := len(waiting) + 1; n < jc.BootstrapExpect {
		return errdefs.Unavailable("%d of the %d expected managers answer (this one and %v)", n, jc.BootstrapExpect, waiting)
	}
	// A node the list does not name never initialises: the listed ones
	// could not know of it, and the lowest of them would initialise too.
	if !slices.Contains(addrs, b.advertise) {
		return errdefs.Unavailable("this node's address %s is not among those %s lists (%v): it will join the swarm once one exists, but never initialise it", b.advertise, b.p, addrs)
	}
	sorted := slices.Clone(addrs)
	slices.SortFunc(sorted, compareAddrs)
	if first := sorted[0]; first != b.advertise {
		return errdefs.Unavailable("all %d managers are here; waiting for %s (the lowest address) to initialise the swarm", jc.BootstrapExpect, first)
	}
	return b.withPortFree(func() error {
		_, err := b.d.swarmInit(ctx, swarm.InitRequest{ListenAddr: b.listen, AdvertiseAddr: b.advertise}, []byte(jc.BootstrapToken))
		if err == nil {
			b.d.log.Info("initialised the swarm: all expected managers answered and this one has the lowest address", "expect", jc.BootstrapExpect, "peers", waiting)
		}
		return err
	})
}

// resolveHosts turns host names (e.g. SRV targets) into IP addresses, so
// they compare with the IPs the nodes advertise. A name that does not
// resolve is kept as it is.
func resolveHosts(ctx context.Context, addrs []string) []string {
	var out []string
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || net.ParseIP(host) != nil {
			out = append(out, a)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ips, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		if err != nil {
			out = append(out, a)
			continue
		}
		for _, ip := range ips {
			if x := net.JoinHostPort(ip, port); !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

// withPortFree runs f (an init or a join, which open the cluster port
// themselves) with the bootstrap listener closed, reopening it if f fails.
func (b *bootstrapper) withPortFree(f func() error) error {
	b.close()
	err := f()
	if err != nil && b.d.current() == nil {
		if oerr := b.open(); oerr != nil {
			b.d.log.Warn("reopen the bootstrap listener", "err", oerr)
		}
	}
	return err
}

type peerState int

const (
	peerDown peerState = iota
	peerWaiting
	peerInSwarm
)

// probe asks a peer's cluster port whether it is in a swarm or waiting
// to form one; the connection trusts nothing, and nothing secret is sent.
func probe(ctx context.Context, addr string, expect int) peerState {
	if _, err := nodeapi.FetchCA(ctx, addr, ca.FetchInsecureConfig(clusterport.ProtoRPC)); err == nil {
		return peerInSwarm
	}
	tr := &http.Transport{DialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: ca.FetchInsecureConfig(clusterport.ProtoRPC)}
		return d.DialContext(ctx, network, a)
	}}
	defer tr.CloseIdleConnections()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, "https://"+addr+pathBootstrap, nil)
	if err != nil {
		return peerDown
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return peerDown
	}
	defer resp.Body.Close()
	var h bootstrapHello
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil || h.Expect != expect {
		return peerDown
	}
	return peerWaiting
}

// compareAddrs orders host:port addresses by IP (numerically) then port,
// the same on every node.
func compareAddrs(a, b string) int {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	ia, ib := net.ParseIP(ha), net.ParseIP(hb)
	if ia != nil && ib != nil {
		if c := slices.Compare(ia.To16(), ib.To16()); c != 0 {
			return c
		}
	} else if c := strings.Compare(ha, hb); c != 0 {
		return c
	}
	if len(pa) != len(pb) {
		return len(pa) - len(pb)
	}
	return strings.Compare(pa, pb)
}
