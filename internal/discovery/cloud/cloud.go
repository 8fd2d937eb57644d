// Package cloud registers hashicorp/go-discover's cloud providers (aws,
// gce, azure, digitalocean, ...) with internal/discovery, so a spec such
// as "provider=aws tag_key=role tag_value=flotilla-manager" finds the
// managers by instance tag, as Nomad's and Consul's cloud auto-join do.
// It lives apart so that a build without it loses only these providers.
package cloud

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"strconv"
	"strings"

	discover "github.com/hashicorp/go-discover"

	"github.com/flotilla-org/flotilla/internal/discovery"
)

func init() {
	d, err := discover.New()
	if err != nil {
		return
	}
	for _, name := range d.Names() {
		discovery.Register(name, func(args map[string]string) (discovery.Provider, error) {
			return newProvider(d, args)
		})
	}
}

// provider asks go-discover for instance addresses and puts the cluster
// port on them (go-discover returns bare IPs).
type provider struct {
	d    *discover.Discover
	spec string
	port string
}

func newProvider(d *discover.Discover, args map[string]string) (*provider, error) {
	port := discovery.DefaultPort
	if p, ok := args["port"]; ok {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return nil, fmt.Errorf("provider=%s: port=%q is not a port number", args["provider"], p)
		}
		port = p
	}
	// go-discover's own syntax, without our port key, in a stable order.
	var keys []string
	for k := range args {
		if k != "port" && k != "provider" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := []string{"provider=" + args["provider"]}
	for _, k := range keys {
		parts = append(parts, k+"="+args[k])
	}
	return &provider{d: d, spec: strings.Join(parts, " "), port: port}, nil
}

func (p *provider) Managers(ctx context.Context) ([]string, error) {
	type result struct {
		addrs []string
		err   error
	}
	ch := make(chan result, 1)
	// go-discover takes no context: a lookup that hangs is left behind.
	go func() {
		a, err := p.d.Addrs(p.spec, log.New(io.Discard, "", 0))
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
