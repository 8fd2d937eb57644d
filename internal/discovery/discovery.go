// Package discovery answers "where are the managers?".
package discovery

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// DefaultPort is the cluster port assumed when an address names none.
const DefaultPort = "2377"

// Provider finds the managers of a swarm.
type Provider interface {
	// Managers returns the cluster-port addresses (host:port) of the managers it knows of now.
	Managers(ctx context.Context) ([]string, error)
	// String names the provider and its source for messages, e.g. "dns srv _flotilla._tcp.example".
	String() string
}

// Factory builds a provider from the key=value arguments of a spec
// "provider=NAME k=v ...", all of them including provider=NAME.
type Factory func(args map[string]string) (Provider, error)

var (
	regMu     sync.RWMutex
	factories = map[string]Factory{}
)

// Register adds a provider reachable as "provider=NAME ..." in a spec.
// Packages such as internal/gce call it from init, so this package need
// not import them. A later registration of the same name replaces the
// earlier one.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	factories[name] = f
}

func factory(name string) (Factory, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := factories[name]
	return f, ok
}

// Names lists the registered "provider=" names, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var out []string
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Parse builds a provider from a spec string given to --join / --discover, e.g.
// "10.0.0.1:2377,10.0.0.2:2377" (static), "dns:managers.example:2377", "dns+srv:_flotilla._tcp.example",
// "file:/etc/flotilla/managers", "provider=gce tag_value=x" / "provider=aws ..." (go-discover syntax).
func Parse(spec string) (Provider, error) {
	spec = strings.TrimSpace(spec)
	switch {
	case spec == "":
		return nil, fmt.Errorf("empty discovery spec: give manager addresses (10.0.0.1:2377,10.0.0.2), dns:NAME, dns+srv:NAME, file:PATH or provider=NAME")
	case strings.HasPrefix(spec, "provider="):
		return parseKV(spec)
	case strings.HasPrefix(spec, "dns+srv:"):
		return newSRV(strings.TrimPrefix(spec, "dns+srv:"), nil)
	case strings.HasPrefix(spec, "dns:"):
		return newDNS(strings.TrimPrefix(spec, "dns:"), nil)
	case strings.HasPrefix(spec, "file:"):
		return newFile(strings.TrimPrefix(spec, "file:"))
	}
	return newStatic(spec)
}

// parseKV reads go-discover's "provider=NAME key=value ..." syntax.
func parseKV(spec string) (Provider, error) {
	args := map[string]string{}
	for _, f := range strings.Fields(spec) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("discovery spec %q: %q is not key=value", spec, f)
		}
		args[k] = v
	}
	name := args["provider"]
	f, ok := factory(name)
	if !ok {
		return nil, fmt.Errorf("discovery spec %q: no provider %q in this build (known: %s)", spec, name, strings.Join(Names(), ", "))
	}
	return f(args)
}

// withPort adds the default port to an address that has none.
func withPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	return net.JoinHostPort(strings.Trim(addr, "[]"), DefaultPort)
}

// static is a fixed list.
type static []string

func newStatic(spec string) (Provider, error) {
	var out static
	for _, p := range strings.Split(spec, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		a := withPort(p)
		host, port, err := net.SplitHostPort(a)
		if _, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil {
			return nil, fmt.Errorf("discovery spec: %q is not a host:port address", p)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("discovery spec %q names no address", spec)
	}
	return out, nil
}

func (s static) Managers(context.Context) ([]string, error) { return append([]string(nil), s...), nil }
func (s static) String() string                             { return "static " + strings.Join(s, ",") }
