package engineapi

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func (a *api) networkRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/networks", handler: a.getNetworks},
		{method: http.MethodPost, path: "/networks/create", handler: a.createNetwork},
		{method: http.MethodGet, path: "/networks/{id}", handler: a.getNetwork},
		{method: http.MethodDelete, path: "/networks/{id}", handler: a.removeNetwork},
		{method: http.MethodPost, path: "/networks/{id}/connect", handler: a.connectNetwork},
		{method: http.MethodPost, path: "/networks/{id}/disconnect", handler: a.connectNetwork},
	}
}

// networkCreateRequest is POST /networks/create's body (Docker's
// CreateRequest), with the addresses as strings so that a bad one gets
// its own message rather than a JSON decoding error.
type networkCreateRequest struct {
	Name       string
	Driver     string
	Scope      string
	EnableIPv4 *bool
	EnableIPv6 *bool
	IPAM       *struct {
		Driver  string
		Options map[string]string
		Config  []struct {
			Subnet, IPRange, Gateway string
			AuxAddress               map[string]string `json:"AuxiliaryAddresses"`
		}
	}
	Internal, Attachable, Ingress, ConfigOnly bool
	ConfigFrom                                *network.ConfigReference
	Options, Labels                           map[string]string
}

// spec turns the request into a swarm network spec, refusing what
// flotilla's networks cannot do.
func (req *networkCreateRequest) spec() (swarm.NetworkSpec, error) {
	spec := swarm.NetworkSpec{
		Annotations:         swarm.Annotations{Name: req.Name, Labels: req.Labels},
		DriverConfiguration: &swarm.Driver{Name: req.Driver, Options: req.Options},
		Internal:            req.Internal,
		Attachable:          req.Attachable,
		Ingress:             req.Ingress,
		ConfigFrom:          req.ConfigFrom,
		Scope:               req.Scope,
	}
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	switch {
	case strings.TrimSpace(req.Name) == "":
		return spec, errdefs.Invalid("a network needs a name: give it as the last argument of 'network create'")
	case req.ConfigOnly:
		return spec, errdefs.Invalid("config-only networks (--config-only) are not supported by flotilla; create the overlay network with its options directly")
	case req.EnableIPv4 != nil && !*req.EnableIPv4:
		return spec, errdefs.Invalid("IPv4 cannot be disabled on flotilla's networks; leave out --ipv4=false")
	}
	if req.EnableIPv6 != nil {
		spec.IPv6Enabled = *req.EnableIPv6
	}
	if req.IPAM == nil {
		return spec, nil
	}
	spec.IPAMOptions = &swarm.IPAMOptions{Driver: swarm.Driver{Name: req.IPAM.Driver, Options: req.IPAM.Options}}
	for _, c := range req.IPAM.Config {
		var cfg swarm.IPAMConfig
		var err error
		if len(c.AuxAddress) > 0 {
			return spec, errdefs.Invalid("auxiliary addresses (--aux-address) are not supported by flotilla; leave them out")
		}
		if cfg.Subnet, err = netip.ParsePrefix(c.Subnet); err != nil {
			return spec, errdefs.Invalid("invalid network config: invalid subnet %q: give it in CIDR form, such as 10.1.0.0/24", c.Subnet)
		}
		if c.IPRange != "" {
			if cfg.Range, err = netip.ParsePrefix(c.IPRange); err != nil {
				return spec, errdefs.Invalid("invalid network config: invalid ip range %q: give it in CIDR form, such as 10.1.0.128/25", c.IPRange)
			}
		}
		if c.Gateway != "" {
			if cfg.Gateway, err = netip.ParseAddr(c.Gateway); err != nil {
				return spec, errdefs.Invalid("invalid network config: invalid gateway %q: give an IP address, such as 10.1.0.1", c.Gateway)
			}
		}
		spec.IPAMOptions.Configs = append(spec.IPAMOptions.Configs, cfg)
	}
	return spec, nil
}

func (a *api) createNetwork(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req networkCreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	spec, err := req.spec()
	if err != nil {
		return err
	}
	id, err := a.b.NetworkCreate(r.Context(), spec)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, network.CreateResponse{ID: id})
}

// networkInspect is a swarm network as dockerd shows it on a manager.
func networkInspect(n swarm.Network) network.Inspect {
	out := network.Inspect{Network: network.Network{
		Name:       n.Spec.Name,
		ID:         n.ID,
		Created:    n.CreatedAt,
		Scope:      "swarm",
		Driver:     n.DriverState.Name,
		EnableIPv4: true,
		EnableIPv6: n.Spec.IPv6Enabled,
		Internal:   n.Spec.Internal,
		Attachable: n.Spec.Attachable,
		Ingress:    n.Spec.Ingress,
		Options:    n.DriverState.Options,
		Labels:     n.Spec.Labels,
		IPAM:       network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
	}}
	if n.Spec.ConfigFrom != nil {
		out.ConfigFrom = *n.Spec.ConfigFrom
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if o := n.IPAMOptions; o != nil {
		if o.Driver.Name != "" {
			out.IPAM.Driver = o.Driver.Name
		}
		out.IPAM.Options = o.Driver.Options
		for _, c := range o.Configs {
			out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: c.Subnet, IPRange: c.Range, Gateway: c.Gateway})
		}
	}
	return out
}

// networkFilter is a parsed GET /networks filter (dockerd's keys).
type networkFilter struct {
	args          filterArgs
	names, ids    []*regexp.Regexp
	types, labels []string
}

func newNetworkFilter(args filterArgs) (networkFilter, error) {
	if err := args.validate("name", "id", "label", "driver", "scope", "type", "dangling"); err != nil {
		return networkFilter{}, err
	}
	f := networkFilter{args: args, types: args.get("type"), labels: args.get("label")}
	for _, t := range f.types {
		if t != "custom" && t != "builtin" {
			return networkFilter{}, errdefs.Invalid("invalid filter: 'type'='%s'", t)
		}
	}
	for _, d := range args.get("dangling") {
		if d != "true" && d != "false" && d != "1" && d != "0" {
			return networkFilter{}, errdefs.Invalid("invalid filter 'dangling=%s'", d)
		}
	}
	// As dockerd, name and id values are patterns matched anywhere in the
	// value; one that is not a valid pattern matches as plain text.
	for _, k := range []string{"name", "id"} {
		for _, v := range args.get(k) {
			re, err := regexp.Compile(v)
			if err != nil {
				re = regexp.MustCompile(regexp.QuoteMeta(v))
			}
			if k == "name" {
				f.names = append(f.names, re)
			} else {
				f.ids = append(f.ids, re)
			}
		}
	}
	return f, nil
}

func matchAnyRE(s string, res []*regexp.Regexp) bool {
	if len(res) == 0 {
		return true
	}
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

func (f networkFilter) match(n *network.Inspect) bool {
	exact := func(key, v string) bool { return len(f.args[key]) == 0 || f.args[key][v] }
	// Every swarm network is custom: the builtin ones (bridge, host,
	// none) are an engine's local networks, which flotilla has not.
	custom := len(f.types) == 0 || f.args["type"]["custom"]
	// No container or service attaches to a network yet: all are dangling.
	dangling := len(f.args["dangling"]) == 0 || f.args["dangling"]["true"] || f.args["dangling"]["1"]
	return custom && dangling && matchAnyRE(n.Name, f.names) && matchAnyRE(n.ID, f.ids) &&
		exact("driver", n.Driver) && exact("scope", n.Scope) && matchLabels(n.Labels, f.labels)
}

func (a *api) getNetworks(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	args, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	f, err := newNetworkFilter(args)
	if err != nil {
		return err
	}
	nets, err := a.b.Networks(r.Context())
	if err != nil {
		return err
	}
	out := []network.Summary{}
	for _, n := range nets {
		ni := networkInspect(n)
		if f.match(&ni) {
			out = append(out, network.Summary{Network: ni.Network})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return writeJSON(w, http.StatusOK, out)
}

// resolveNetwork finds the network ref names (see resolve).
func (a *api) resolveNetwork(ctx context.Context, ref string) (swarm.Network, error) {
	nets, err := a.b.Networks(ctx)
	if err != nil {
		return swarm.Network{}, err
	}
	return resolve(networkRefs, nets, ref)
}

func (a *api) getNetwork(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if _, err := strictBool(r, "verbose"); err != nil {
		return err
	}
	n, err := a.resolveNetwork(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	// As dockerd: a network of another scope than the one asked for is
	// not found.
	if s := r.URL.Query().Get("scope"); s != "" && s != "swarm" {
		return errdefs.NotFound("network %s not found", vars["id"])
	}
	return writeJSON(w, http.StatusOK, networkInspect(n))
}

func (a *api) removeNetwork(w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	n, err := a.resolveNetwork(r.Context(), vars["id"])
	if err != nil {
		return err
	}
	if err := a.b.NetworkRemove(r.Context(), n.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// connectNetwork answers docker network connect/disconnect: flotilla runs
// no standalone containers to attach.
func (a *api) connectNetwork(_ http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	return errdefs.Invalid("connecting containers to network %s is not supported by flotilla: it runs services, not standalone containers; attach a service with 'service create --network' or 'service update --network-add'", vars["id"])
}
