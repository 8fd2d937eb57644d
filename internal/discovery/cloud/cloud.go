// Package cloud registers hashicorp/go-discover's cloud providers (aws,
// gce, azure, digitalocean, ...) with internal/discovery, so a spec such
// as "provider=aws tag_key=role tag_value=flotilla-manager" finds the
// managers by instance tag, as Nomad's and Consul's cloud auto-join do.
// It lives apart so that a build without it loses only these providers.
//
// The providers are imported one by one (providers.go), not through
// go-discover's root package, which imports all of them: every package
// linked in runs its initialisation in every flotilla process (daemon,
// CLI, each process task's shim), and vSphere's SDK alone costs 13 MB of
// binary and 6.5 MB resident per process. It is built in only with
// `-tags vsphere` (providers_vsphere.go).
package cloud

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"

	"github.com/flotilla-org/flotilla/internal/discovery"
)

// lookup is what every go-discover provider does: addresses of the
// instances the arguments select (args["provider"] is its own name).
type lookup interface {
	Addrs(args map[string]string, l *log.Logger) ([]string, error)
}

// providers are the go-discover providers built in, by name.
var providers = map[string]lookup{}

func init() {
	for name, l := range providers {
		discovery.Register(name, func(args map[string]string) (discovery.Provider, error) {
			return newProvider(l, args)
		})
	}
}

// provider asks go-discover for instance addresses and puts the cluster
// port on them (go-discover returns bare IPs).
type provider struct {
	d    lookup
	args map[string]string // go-discover's arguments: URL-decoded, no port
	spec string
	port string
}

func newProvider(d lookup, args map[string]string) (*provider, error) {
	decoded, port, err := discovery.GoDiscoverArgs(args)
	if err != nil {
		return nil, err
	}
	// go-discover's own syntax, without our port key, in a stable order.
	return &provider{d: d, args: decoded, spec: discovery.CanonicalSpec(args, "port"), port: port}, nil
}

func (p *provider) Managers(ctx context.Context) ([]string, error) {
	type result struct {
		addrs []string
		err   error
	}
	ch := make(chan result, 1)
	// go-discover takes no context: a lookup that hangs is left behind.
	go func() {
		a, err := p.d.Addrs(p.args, log.New(io.Discard, "", 0))
		ch <- result{a, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", p, ctx.Err())
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("%s: %w", p, r.err)
		}
		out := make([]string, 0, len(r.addrs))
		for _, a := range r.addrs {
			out = append(out, net.JoinHostPort(a, p.port))
		}
		return out, nil
	}
}

// String hides nothing secret: go-discover's credentials come from the
// environment or instance roles, or from keys the user typed in the spec,
// which the spec's owner already sees.
func (p *provider) String() string { return "go-discover " + p.spec + " port=" + p.port }
