package stack

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Plan is what a compose project becomes in the Engine API's
// terms, the way `docker stack deploy` converts it.
type Plan struct {
	services map[string]swarm.ServiceSpec           // by scoped name (STACK_SERVICE)
	networks map[string]client.NetworkCreateOptions // the stack's own, by scoped name
	external []string                               // networks that must already exist
	secrets  []blob
	configs  []blob
}

// Convert converts a loaded compose project into the specs of the
// stack's services and networks. It checks everything it can before
// anything is sent.
func Convert(stack string, p *types.Project) (*Plan, error) {
	plan := &Plan{services: map[string]swarm.ServiceSpec{}, networks: map[string]client.NetworkCreateOptions{}}
	if len(p.Services) == 0 {
		return nil, errors.New("the compose file has no services")
	}
	used := map[string]bool{}
	secrets, configs := map[string]types.FileObjectConfig{}, map[string]types.FileObjectConfig{}
	for k, v := range p.Secrets {
		secrets[k] = types.FileObjectConfig(v)
	}
	for k, v := range p.Configs {
		configs[k] = types.FileObjectConfig(v)
	}
	usedSecrets, usedConfigs := map[string]bool{}, map[string]bool{}
	for _, name := range sortedKeys(p.Services) {
		svc := p.Services[name]
		spec, err := convertService(stack, svc, p.Networks, p.Volumes)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		cs := spec.TaskTemplate.ContainerSpec
		cs.Secrets = convertSecretRefs(stack, svc.Secrets, secrets)
		cs.Configs = convertConfigRefs(stack, svc.Configs, configs)
		plan.services[spec.Name] = spec
		for n := range serviceNetworks(svc) {
			used[n] = true
		}
		for _, r := range svc.Secrets {
			usedSecrets[r.Source] = true
		}
		for _, r := range svc.Configs {
			usedConfigs[r.Source] = true
		}
	}
	var err error
	if plan.secrets, err = convertBlobs(stack, "secret", usedSecrets, secrets, p.Environment); err != nil {
		return nil, err
	}
	if plan.configs, err = convertBlobs(stack, "config", usedConfigs, configs, p.Environment); err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(used) {
		nc := p.Networks[name]
		target := networkTarget(stack, name, nc)
		if nc.External {
			plan.external = append(plan.external, target)
			continue
		}
		req, err := convertNetwork(stack, nc)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", name, err)
		}
		plan.networks[target] = req
	}
	return plan, nil
}

// serviceNetworks are the networks a service is on: the stack's default
// one when it names none, as docker does.
func serviceNetworks(svc types.ServiceConfig) map[string]*types.ServiceNetworkConfig {
	if len(svc.Networks) == 0 {
		return map[string]*types.ServiceNetworkConfig{defaultNetwork: nil}
	}
	return svc.Networks
}

// networkTarget is the name of a compose network in the cluster:
// STACK_NET, or the name the file gives it (external ones).
func networkTarget(stack, name string, nc types.NetworkConfig) string {
	if nc.Name != "" {
		return nc.Name
	}
	return ScopeName(stack, name)
}

func convertNetwork(stack string, nc types.NetworkConfig) (client.NetworkCreateOptions, error) {
	req := client.NetworkCreateOptions{
		Driver: cmp.Or(nc.Driver, "overlay"), Scope: "swarm",
		Labels: withNamespace(stack, nc.Labels), Options: nc.DriverOpts,
		Internal: nc.Internal, Attachable: nc.Attachable,
	}
	if len(nc.Ipam.Config) == 0 && nc.Ipam.Driver == "" {
		return req, nil
	}
	ipam := &network.IPAM{Driver: nc.Ipam.Driver}
	for _, pool := range nc.Ipam.Config {
		var c network.IPAMConfig
		var err error
		if c.Subnet, err = netip.ParsePrefix(pool.Subnet); err != nil {
			return req, fmt.Errorf("ipam subnet %q: %v", pool.Subnet, err)
		}
		if pool.Gateway != "" {
			if c.Gateway, err = netip.ParseAddr(pool.Gateway); err != nil {
				return req, fmt.Errorf("ipam gateway %q: %v", pool.Gateway, err)
			}
		}
		if pool.IPRange != "" {
			if c.IPRange, err = netip.ParsePrefix(pool.IPRange); err != nil {
				return req, fmt.Errorf("ipam ip_range %q: %v", pool.IPRange, err)
			}
		}
		ipam.Config = append(ipam.Config, c)
	}
	req.IPAM = ipam
	return req, nil
}

// convertService converts one compose service as docker's CLI does:
// entrypoint is the container's Command, command its Args; deploy.labels
// label the service, labels the containers.
func convertService(stack string, svc types.ServiceConfig, nets types.Networks, vols types.Volumes) (swarm.ServiceSpec, error) {
	var spec swarm.ServiceSpec
	if strings.TrimSpace(svc.Image) == "" {
		return spec, errors.New("no image: give one with image: (flotilla does not build images)")
	}
	deploy := svc.Deploy
	if deploy == nil {
		deploy = &types.DeployConfig{}
	}
	mode, err := convertDeployMode(deploy.Mode, deploy.Replicas)
	if err != nil {
		return spec, err
	}
	endpoint, err := convertEndpoint(deploy.EndpointMode, svc.Ports)
	if err != nil {
		return spec, err
	}
	health, err := convertHealthcheck(svc.HealthCheck)
	if err != nil {
		return spec, err
	}
	restart, err := convertRestartPolicy(svc.Restart, deploy.RestartPolicy)
	if err != nil {
		return spec, err
	}
	resources, err := convertResources(deploy.Resources)
	if err != nil {
		return spec, err
	}
	attachments, err := convertServiceNetworks(stack, svc, nets)
	if err != nil {
		return spec, err
	}
	mounts, err := convertVolumes(stack, svc.Volumes, vols)
	if err != nil {
		return spec, err
	}
	containerLabels := withNamespace(stack, svc.Labels)
	if v, ok := svc.Extensions[driverKey]; ok {
		d, isString := v.(string)
		if !isString {
			return spec, fmt.Errorf("%s: give the driver as a string (docker or process)", driverKey)
		}
		if !slices.Contains(taskDrivers, d) {
			return spec, fmt.Errorf("invalid %s %q: must be %s", driverKey, d, QuoteList(taskDrivers))
		}
		containerLabels[driverLabel] = d
	}
	spec.Name = ScopeName(stack, svc.Name)
	spec.Labels = withNamespace(stack, deploy.Labels)
	spec.Labels[imageLabel] = svc.Image
	spec.TaskTemplate = swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{
			Image:           svc.Image,
			Command:         svc.Entrypoint,
			Args:            svc.Command,
			Hostname:        svc.Hostname,
			Env:             convertEnvironment(svc.Environment),
			Labels:          containerLabels,
			Dir:             svc.WorkingDir,
			User:            svc.User,
			StopGracePeriod: (*time.Duration)(svc.StopGracePeriod),
			Healthcheck:     health,
			Mounts:          mounts,
		},
		Resources:     resources,
		RestartPolicy: restart,
		Placement:     convertPlacement(deploy.Placement),
		Networks:      attachments,
	}
	spec.Mode = mode
	spec.EndpointSpec = endpoint
	spec.UpdateConfig = convertUpdateConfig(deploy.UpdateConfig)
	spec.RollbackConfig = convertUpdateConfig(deploy.RollbackConfig)
	return spec, nil
}

// convertEnvironment gives KEY=VALUE entries in key order; a key the
// environment does not set stays a bare KEY, as docker sends it.
func convertEnvironment(env types.MappingWithEquals) []string {
	var out []string
	for _, k := range sortedKeys(env) {
		if v := env[k]; v != nil {
			out = append(out, k+"="+*v)
		} else {
			out = append(out, k)
		}
	}
	return out
}

func convertDeployMode(mode string, replicas *int) (swarm.ServiceMode, error) {
	var m swarm.ServiceMode
	switch mode {
	case "global":
		if replicas != nil {
			return m, errors.New("deploy.replicas can only be used with replicated mode")
		}
		m.Global = &swarm.GlobalService{}
	case "", "replicated":
		n := uint64(1) // the managers' default, given so a redeploy compares equal
		if replicas != nil {
			if *replicas < 0 {
				return m, fmt.Errorf("deploy.replicas %d: must not be negative", *replicas)
			}
			n = uint64(*replicas)
		}
		m.Replicated = &swarm.ReplicatedService{Replicas: &n}
	default:
		return m, fmt.Errorf("deploy.mode %q is not supported: use replicated or global", mode)
	}
	return m, nil
}

// convertEndpoint always gives an endpoint spec, with the managers'
// defaults filled in (vip, tcp, ingress) and the ports in published
// order, so that a redeploy of the same file compares equal.
func convertEndpoint(mode string, ports []types.ServicePortConfig) (*swarm.EndpointSpec, error) {
	mode = cmp.Or(strings.ToLower(mode), string(swarm.ResolutionModeVIP))
	if !slices.Contains(endpointModes, mode) {
		return nil, fmt.Errorf("invalid deploy.endpoint_mode %q: must be %s", mode, QuoteList(endpointModes))
	}
	es := &swarm.EndpointSpec{Mode: swarm.ResolutionMode(mode)}
	for _, p := range ports {
		pc := swarm.PortConfig{
			Name:        p.Name,
			TargetPort:  p.Target,
			Protocol:    network.IPProtocol(cmp.Or(p.Protocol, string(network.TCP))),
			PublishMode: swarm.PortConfigPublishMode(cmp.Or(p.Mode, string(swarm.PortConfigPublishModeIngress))),
		}
		if p.Published != "" {
			n, err := strconv.ParseUint(p.Published, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("ports: published port %q: give one port number (ranges are not supported)", p.Published)
			}
			pc.PublishedPort = uint32(n)
		}
		switch pc.PublishMode {
		case swarm.PortConfigPublishModeIngress, swarm.PortConfigPublishModeHost:
		default:
			return nil, fmt.Errorf("ports: mode %q: use ingress or host", p.Mode)
		}
		es.Ports = append(es.Ports, pc)
	}
	slices.SortStableFunc(es.Ports, func(a, b swarm.PortConfig) int { return cmp.Compare(a.PublishedPort, b.PublishedPort) })
	return es, nil
}

func convertHealthcheck(h *types.HealthCheckConfig) (*container.HealthConfig, error) {
	if h == nil {
		return nil, nil
	}
	if h.Disable {
		if len(h.Test) != 0 {
			return nil, errors.New("healthcheck: test and disable can't be set at the same time")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	hc := &container.HealthConfig{Test: h.Test}
	dur := func(d *types.Duration) time.Duration {
		if d == nil {
			return 0
		}
		return time.Duration(*d)
	}
	hc.Interval, hc.Timeout = dur(h.Interval), dur(h.Timeout)
	hc.StartPeriod, hc.StartInterval = dur(h.StartPeriod), dur(h.StartInterval)
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	return hc, nil
}

// convertRestartPolicy takes deploy.restart_policy, or else the service's
// restart: key, as docker does.
func convertRestartPolicy(restart string, rp *types.RestartPolicy) (*swarm.RestartPolicy, error) {
	if rp != nil {
		return &swarm.RestartPolicy{
			Condition:   swarm.RestartPolicyCondition(rp.Condition),
			Delay:       (*time.Duration)(rp.Delay),
			MaxAttempts: rp.MaxAttempts,
			Window:      (*time.Duration)(rp.Window),
		}, nil
	}
	name, count, _ := strings.Cut(restart, ":")
	var max *uint64
	if count != "" {
		n, err := strconv.ParseUint(count, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("restart %q: the retry count must be a number", restart)
		}
		if n > 0 {
			max = &n
		}
	}
	switch name {
	case "", "no":
		return nil, nil
	case "always", "unless-stopped":
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, MaxAttempts: max}, nil
	case "on-failure":
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, MaxAttempts: max}, nil
	}
	return nil, fmt.Errorf("restart %q: use no, always, unless-stopped or on-failure[:N]", restart)
}

func convertResources(r types.Resources) (*swarm.ResourceRequirements, error) {
	var out swarm.ResourceRequirements
	cpus := func(v types.NanoCPUs) (int64, error) {
		if v == 0 {
			return 0, nil
		}
		return nanoCPUs(strconv.FormatFloat(float64(v), 'f', -1, 32))
	}
	if l := r.Limits; l != nil && (l.NanoCPUs != 0 || l.MemoryBytes != 0) {
		n, err := cpus(l.NanoCPUs)
		if err != nil {
			return nil, err
		}
		out.Limits = &swarm.Limit{NanoCPUs: n, MemoryBytes: int64(l.MemoryBytes)}
	}
	if l := r.Reservations; l != nil && (l.NanoCPUs != 0 || l.MemoryBytes != 0) {
		n, err := cpus(l.NanoCPUs)
		if err != nil {
			return nil, err
		}
		out.Reservations = &swarm.Resources{NanoCPUs: n, MemoryBytes: int64(l.MemoryBytes)}
	}
	if out.Limits == nil && out.Reservations == nil {
		return nil, nil
	}
	return &out, nil
}

func convertPlacement(p types.Placement) *swarm.Placement {
	if len(p.Constraints) == 0 && len(p.Preferences) == 0 && p.MaxReplicas == 0 {
		return nil
	}
	out := &swarm.Placement{Constraints: p.Constraints, MaxReplicas: p.MaxReplicas}
	for _, pref := range p.Preferences {
		out.Preferences = append(out.Preferences, swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: pref.Spread}})
	}
	return out
}

func convertUpdateConfig(u *types.UpdateConfig) *swarm.UpdateConfig {
	if u == nil {
		return nil
	}
	parallelism := uint64(1) // the managers' default
	if u.Parallelism != nil {
		parallelism = *u.Parallelism
	}
	return &swarm.UpdateConfig{
		Parallelism:     parallelism,
		Delay:           time.Duration(u.Delay),
		FailureAction:   swarm.FailureAction(u.FailureAction),
		Monitor:         time.Duration(u.Monitor),
		MaxFailureRatio: u.MaxFailureRatio,
		Order:           swarm.UpdateOrder(u.Order),
	}
}

// convertServiceNetworks attaches a service to its networks by their
// names in the cluster, in name order, with the service's own name as an
// alias on each (so the stack's services find each other by the names
// in the file), as docker does.
func convertServiceNetworks(stack string, svc types.ServiceConfig, nets types.Networks) ([]swarm.NetworkAttachmentConfig, error) {
	var out []swarm.NetworkAttachmentConfig
	for name, cfg := range serviceNetworks(svc) {
		nc, ok := nets[name]
		if !ok && name != defaultNetwork {
			return nil, fmt.Errorf("undefined network %q: declare it under the top-level \"networks\" key", name)
		}
		a := swarm.NetworkAttachmentConfig{Target: networkTarget(stack, name, nc)}
		if cfg != nil {
			a.Aliases = slices.Clone(cfg.Aliases)
		}
		a.Aliases = append(a.Aliases, svc.Name)
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out, nil
}

// convertVolumes turns a service's volumes: into mounts as docker's CLI
// does: a named volume is the stack's (STACK_NAME, labelled with the
// namespace, with the driver and options the top-level volumes: give)
// unless it is external; binds and tmpfs go as they are.
func convertVolumes(stack string, vols []types.ServiceVolumeConfig, declared types.Volumes) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, v := range vols {
		m := mount.Mount{Type: mount.Type(v.Type), Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume, "":
			m.Type = mount.TypeVolume
			if v.Bind != nil || v.Tmpfs != nil {
				return nil, fmt.Errorf("volume %s: bind and tmpfs options are incompatible with type volume", v.Target)
			}
			if v.Volume != nil && (v.Volume.NoCopy || v.Volume.Subpath != "") {
				m.VolumeOptions = &mount.VolumeOptions{NoCopy: v.Volume.NoCopy, Subpath: v.Volume.Subpath}
			}
			if v.Source == "" {
				break // anonymous: the task's own
			}
			vc, ok := declared[v.Source]
			if !ok {
				return nil, fmt.Errorf("undefined volume %q: declare it under the top-level \"volumes\" key", v.Source)
			}
			m.Source = cmp.Or(vc.Name, ScopeName(stack, v.Source))
			if vc.External {
				break
			}
			if m.VolumeOptions == nil {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			m.VolumeOptions.Labels = withNamespace(stack, vc.Labels)
			if vc.Driver != "" || len(vc.DriverOpts) > 0 {
				m.VolumeOptions.DriverConfig = &mount.Driver{Name: vc.Driver, Options: vc.DriverOpts}
			}
		case types.VolumeTypeBind:
			if v.Source == "" {
				return nil, fmt.Errorf("volume %s: a bind needs a source", v.Target)
			}
			if v.Bind != nil && v.Bind.Propagation != "" {
				m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v.Bind.Propagation)}
			}
		case types.VolumeTypeTmpfs:
			if v.Source != "" {
				return nil, fmt.Errorf("volume %s: a tmpfs takes no source", v.Target)
			}
			if t := v.Tmpfs; t != nil && (t.Size != 0 || t.Mode != 0) {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(t.Size), Mode: os.FileMode(t.Mode)}
			}
		default:
			return nil, fmt.Errorf("volume %s: type %q is not supported: use volume, bind or tmpfs", v.Target, v.Type)
		}
		out = append(out, m)
	}
	return out, nil
}
