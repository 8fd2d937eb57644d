package manager

import (
	"fmt"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// notYet is a service spec field flotilla does not implement yet. A spec
// that sets one is refused (400) naming the field, never accepted and
// silently dropped. docs/operations.md ("What a service spec may
// contain") lists the same; an issue that implements a field removes its
// entry here and there.
type notYet struct {
	field string // as in the Engine API
	flag  string // the docker CLI flag that sets it
	set   func(s *swarm.ServiceSpec, c *swarm.ContainerSpec) bool
}

var notYetSupported = []notYet{
	{"EndpointSpec.Ports Protocol sctp", "--publish protocol=sctp", func(s *swarm.ServiceSpec, _ *swarm.ContainerSpec) bool {
		return anyPort(s, func(p swarm.PortConfig) bool { return p.Protocol == network.SCTP })
	}},
	{"TaskTemplate.LogDriver", "--log-driver", func(s *swarm.ServiceSpec, _ *swarm.ContainerSpec) bool {
		return s.TaskTemplate.LogDriver != nil && s.TaskTemplate.LogDriver.Name != ""
	}},
	{"TaskTemplate.PluginSpec", "", func(s *swarm.ServiceSpec, _ *swarm.ContainerSpec) bool { return s.TaskTemplate.PluginSpec != nil }},
	{"TaskTemplate.NetworkAttachmentSpec", "", func(s *swarm.ServiceSpec, _ *swarm.ContainerSpec) bool {
		return s.TaskTemplate.NetworkAttachmentSpec != nil
	}},
	{"TaskTemplate.Runtime", "", func(s *swarm.ServiceSpec, _ *swarm.ContainerSpec) bool {
		return s.TaskTemplate.Runtime != "" && s.TaskTemplate.Runtime != swarm.RuntimeContainer
	}},
	{"TaskTemplate.Resources.Limits.Pids", "--limit-pids", func(s *swarm.ServiceSpec, _ *swarm.ContainerSpec) bool {
		r := s.TaskTemplate.Resources
		return r != nil && r.Limits != nil && r.Limits.Pids != 0
	}},
	{"TaskTemplate.Resources.Reservations.GenericResources", "--generic-resource", func(s *swarm.ServiceSpec, _ *swarm.ContainerSpec) bool {
		r := s.TaskTemplate.Resources
		return r != nil && r.Reservations != nil && len(r.Reservations.GenericResources) > 0
	}},
	{"ContainerSpec.Groups", "--group", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return len(c.Groups) > 0 }},
	{"ContainerSpec.Privileges", "--credential-spec", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool {
		p := c.Privileges
		return p != nil && (p.CredentialSpec != nil || p.SELinuxContext != nil || p.Seccomp != nil || p.AppArmor != nil || p.NoNewPrivileges)
	}},
	{"ContainerSpec.Init", "--init", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return c.Init != nil && *c.Init }},
	{"ContainerSpec.StopSignal", "--stop-signal", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return c.StopSignal != "" }},
	{"ContainerSpec.TTY", "--tty", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return c.TTY }},
	{"ContainerSpec.OpenStdin", "", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return c.OpenStdin }},
	{"ContainerSpec.ReadOnly", "--read-only", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return c.ReadOnly }},
	{"ContainerSpec.Hosts", "--host", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return len(c.Hosts) > 0 }},
	{"ContainerSpec.DNSConfig", "--dns", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool {
		d := c.DNSConfig
		return d != nil && (len(d.Nameservers) > 0 || len(d.Search) > 0 || len(d.Options) > 0)
	}},
	{"ContainerSpec.Isolation", "--isolation", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool {
		return c.Isolation != "" && c.Isolation != "default"
	}},
	{"ContainerSpec.Sysctls", "--sysctl", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return len(c.Sysctls) > 0 }},
	{"ContainerSpec.CapabilityAdd", "--cap-add", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return len(c.CapabilityAdd) > 0 }},
	{"ContainerSpec.CapabilityDrop", "--cap-drop", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return len(c.CapabilityDrop) > 0 }},
	{"ContainerSpec.Ulimits", "--ulimit", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return len(c.Ulimits) > 0 }},
	{"ContainerSpec.OomScoreAdj", "--oom-score-adj", func(_ *swarm.ServiceSpec, c *swarm.ContainerSpec) bool { return c.OomScoreAdj != 0 }},
}

// refuseUnsupported refuses a spec that sets a field flotilla does not
// implement yet. References to networks, secrets and configs are checked
// against the store (attachNetworks, attachSecretsConfigs).
func refuseUnsupported(spec *swarm.ServiceSpec) error {
	cs := spec.TaskTemplate.ContainerSpec
	for _, f := range notYetSupported {
		if f.set(spec, cs) {
			how := ""
			if f.flag != "" {
				how = fmt.Sprintf(" (%s)", f.flag)
			}
			return errdefs.Invalid("%s%s is not supported yet by flotilla; remove it from the service spec (see 'What a service spec may contain' in docs/operations.md)", f.field, how)
		}
	}
	return nil
}

func anyPort(s *swarm.ServiceSpec, match func(swarm.PortConfig) bool) bool {
	if s.EndpointSpec == nil {
		return false
	}
	for _, p := range s.EndpointSpec.Ports {
		if match(p) {
			return true
		}
	}
	return false
}
