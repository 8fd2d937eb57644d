package manager

import (
	"context"
	"net/netip"
	"regexp"
	"slices"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/ids"
	"github.com/flotilla-org/flotilla/manager/state"
)

// NetworkDriver is the one network driver of swarm scope.
const NetworkDriver = "overlay"

// IngressName is the name of the routing mesh's network, as in Docker.
const IngressName = "ingress"

// Docker's own networks: their names cannot be taken in any scope.
var predefinedNetworks = []string{"bridge", "host", "none", "default"}

var networkNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// validateNetworkSpec checks a spec and fills Docker's defaults: the
// overlay driver and swarm scope.
func validateNetworkSpec(spec *swarm.NetworkSpec) error {
	switch {
	case spec.Name == "":
		return errdefs.Invalid("a network needs a name: give it as the last argument of 'network create'")
	case slices.Contains(predefinedNetworks, spec.Name):
		return errdefs.Forbidden("%s is a pre-defined network and cannot be created; choose another name", spec.Name)
	case len(spec.Name) > 255 || !networkNameRE.MatchString(spec.Name):
		return errdefs.Invalid("invalid network name %q: use letters, digits, '_', '.' or '-', starting with a letter or digit", spec.Name)
	}
	if spec.DriverConfiguration == nil {
		spec.DriverConfiguration = &swarm.Driver{}
	}
	switch d := spec.DriverConfiguration.Name; d {
	case "":
		spec.DriverConfiguration.Name = NetworkDriver
	case NetworkDriver:
	default:
		return errdefs.Invalid("network driver %q is not supported: only the overlay driver is supported in swarm scope (flotilla has no local networks); use -d overlay", d)
	}
	for k := range spec.DriverConfiguration.Options {
		// "encrypted" asks for what flotilla always does: traffic between
		// nodes rides the cluster port's mutual TLS. Anything else would
		// be stored and change nothing.
		if k != "encrypted" {
			return errdefs.Invalid("network driver option %q (-o) is not supported by flotilla (only \"encrypted\", which traffic between nodes always is): leave it out", k)
		}
	}
	switch spec.Scope {
	case "":
		spec.Scope = "swarm"
	case "swarm":
	default:
		return errdefs.Invalid("invalid scope %q: flotilla's networks are of swarm scope; leave --scope out or use --scope swarm", spec.Scope)
	}
	switch {
	case spec.IPv6Enabled:
		return errdefs.Invalid("IPv6 networks (--ipv6) are not supported yet by flotilla; leave the flag out")
	case spec.ConfigFrom != nil && spec.ConfigFrom.Network != "":
		return errdefs.Invalid("config-only networks (--config-from) are not supported by flotilla; give the network's options directly")
	case spec.Ingress && spec.Attachable:
		return errdefs.Invalid("an ingress network cannot be attachable; leave out --attachable or --ingress")
	case spec.Ingress && spec.Internal:
		return errdefs.Invalid("an ingress network cannot be internal: it carries the published ports; leave out --internal or --ingress")
	}
	return nil
}

// networkByName returns the network of that name, or nil.
func networkByName(v *state.View, name string) *state.Network {
	for _, n := range v.Networks() {
		if n.Spec.Name == name {
			return n
		}
	}
	return nil
}

// ingressNetwork returns the cluster's ingress network, or nil.
func ingressNetwork(v *state.View) *state.Network {
	for _, n := range v.Networks() {
		if n.Spec.Ingress {
			return n
		}
	}
	return nil
}

// newNetwork validates spec against the other networks and returns the
// object to store, with its subnets allocated.
func newNetwork(v *state.View, spec swarm.NetworkSpec) (*state.Network, error) {
	if err := validateNetworkSpec(&spec); err != nil {
		return nil, err
	}
	if n := networkByName(v, spec.Name); n != nil {
		return nil, errdefs.Conflict("network with name %s already exists (ID %s); choose another name or remove it first", spec.Name, n.ID)
	}
	if in := ingressNetwork(v); spec.Ingress && in != nil {
		return nil, errdefs.Conflict("an ingress network (%s, ID %s) is already present; a swarm has one: remove it first to replace it", in.Spec.Name, in.ID)
	}
	var avoid []netip.Prefix
	if !spec.Ingress { // the mesh captures every network's subnet but ingress's
		avoid = nodeAddrs(v)
	}
	ipam, err := allocateIPAM(&spec, usedSubnets(v.Networks()), avoid)
	if err != nil {
		return nil, err
	}
	n := &state.Network{}
	n.ID = ids.New()
	n.Spec = spec
	n.DriverState = swarm.Driver{Name: spec.DriverConfiguration.Name, Options: spec.DriverConfiguration.Options}
	n.IPAMOptions = ipam
	return n, nil
}

// CreateNetwork stores a new swarm-scope network and returns its ID.
func (m *Manager) CreateNetwork(ctx context.Context, spec swarm.NetworkSpec) (string, error) {
	if err := m.requireLeader(); err != nil {
		return "", err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	n, err := newNetwork(m.store.View(), spec)
	if err != nil {
		return "", err
	}
	if err := m.propose(ctx, state.NewOp(state.TableNetworks, state.ActionCreate, n, 0)); err != nil {
		return "", err
	}
	return n.ID, nil
}

// RemoveNetwork deletes a network no service uses.
func (m *Manager) RemoveNetwork(ctx context.Context, id string) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	v := m.store.View()
	n := v.Network(id)
	if n == nil {
		return errdefs.NotFound("network %s not found", id)
	}
	if err := networkInUse(v, n); err != nil {
		return err
	}
	return m.propose(ctx, state.NewOp(state.TableNetworks, state.ActionDelete, n, 0))
}

// networkInUse refuses the removal of a network that a service or a
// live task names, or of the ingress network while a service publishes
// a port through the routing mesh. Messages are Docker's, and so is the
// status: 400 (swarmkit's FailedPrecondition, as dockerd maps it).
func networkInUse(v *state.View, n *state.Network) error {
	names := func(targets []swarm.NetworkAttachmentConfig) bool {
		return slices.ContainsFunc(targets, func(a swarm.NetworkAttachmentConfig) bool {
			return a.Target == n.ID || a.Target == n.Spec.Name
		})
	}
	for _, s := range v.Services() {
		if names(s.Spec.TaskTemplate.Networks) {
			return errdefs.Invalid("network %s is in use by service %s (%s); remove the network from the service (service update --network-rm) or remove the service first", n.Spec.Name, s.Spec.Name, s.ID)
		}
		if n.Spec.Ingress && publishesIngress(s.Spec) {
			return errdefs.Invalid("ingress network cannot be removed because service %s depends on it; unpublish its ingress ports (service update --publish-rm) or remove the service first", s.ID)
		}
	}
	for _, t := range v.Tasks() {
		// As swarmkit: a task still meant to run holds its network; one
		// being shut down (its service removed: docker stack rm removes
		// the networks right after the services) does not.
		if t.DesiredState == swarm.TaskStateRunning && !state.TerminalState(t.Status.State) && names(t.Spec.Networks) {
			return errdefs.Invalid("network %s is in use by task %s; wait until the task has ended", n.Spec.Name, t.ID)
		}
	}
	return nil
}

// publishesIngress tells whether a service publishes a port through the
// routing mesh (mode ingress, the default).
func publishesIngress(spec swarm.ServiceSpec) bool {
	return anyPort(&spec, func(p swarm.PortConfig) bool {
		return p.PublishMode == "" || p.PublishMode == swarm.PortConfigPublishModeIngress
	})
}

// Networks returns every network as the API shows it.
func (m *Manager) Networks() []swarm.Network {
	nets := m.store.Networks()
	out := make([]swarm.Network, 0, len(nets))
	for _, n := range nets {
		w := n.Copy().Network
		w.Spec.Labels = wireLabels(w.Spec.Labels)
		out = append(out, w)
	}
	return out
}

// attachNetworks checks the networks a service spec attaches it to and
// rewrites each target to the network's full ID, as dockerd stores them:
// a target is a full ID, a name or a unique ID prefix. Errors are
// Docker's where it has one; nothing is changed on an error.
func attachNetworks(v *state.View, spec *swarm.ServiceSpec) error {
	nets := v.Networks()
	all := make([]swarm.Network, len(nets))
	for i, n := range nets {
		all[i] = n.Network
	}
	out := make([]swarm.NetworkAttachmentConfig, 0, len(spec.TaskTemplate.Networks))
	seen := map[string]string{}
	for _, a := range spec.TaskTemplate.Networks {
		if a.Target == "" {
			return errdefs.Invalid("a network attachment needs a Target: the network's name or ID")
		}
		if len(a.DriverOpts) > 0 {
			// Accepted, they would change nothing: flotilla's networks have
			// no driver to pass them to.
			return errdefs.Invalid("driver options on the attachment to network %s (--network driver-opt=) are not supported by flotilla: leave them out", a.Target)
		}
		n, err := ids.Resolve(ids.NetworkRefs, all, a.Target)
		if err != nil {
			return err
		}
		if n.Spec.Ingress {
			return errdefs.Invalid("service cannot be explicitly attached to the ingress network %q: it carries published ports (--publish) by itself; name another network", n.Spec.Name)
		}
		if prev, ok := seen[n.ID]; ok {
			return errdefs.Invalid("network %s is given twice (as %s and %s); attach a service to a network once", n.Spec.Name, prev, a.Target)
		}
		seen[n.ID] = a.Target
		for _, alias := range a.Aliases {
			if len(alias) > 255 || !aliasRE.MatchString(alias) {
				return errdefs.Invalid("invalid alias %q on network %s: use letters, digits, '_', '-' and '.', starting with a letter or digit (at most 255)", alias, n.Spec.Name)
			}
		}
		a.Target = n.ID
		out = append(out, a)
	}
	if len(out) > 0 {
		spec.TaskTemplate.Networks = out
	}
	return nil
}

// aliasRE is a name a task can ask the DNS for: as service names are
// (compose files name services with '_', and a stack makes each one's
// short name an alias, as docker's CLI does).
var aliasRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
