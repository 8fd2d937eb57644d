package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/stack"
)

// endpointModes are the values of --endpoint-mode.
var endpointModes = []string{string(swarm.ResolutionModeVIP), string(swarm.ResolutionModeDNSRR)}

// parsePublish parses a --publish value as docker does: the short form
// [PUBLISHED:]TARGET[/PROTOCOL], or the long form
// published=P,target=T,protocol=tcp|udp,mode=ingress|host. A port left
// unpublished gets one assigned by the managers.
func parsePublish(v string) (swarm.PortConfig, error) {
	p := swarm.PortConfig{Protocol: network.TCP, PublishMode: swarm.PortConfigPublishModeIngress}
	bad := func(why string) (swarm.PortConfig, error) {
		return swarm.PortConfig{}, fmt.Errorf("invalid --publish %q: %s; use [PUBLISHED:]TARGET[/PROTOCOL] or published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]", v, why)
	}
	if strings.Contains(v, "=") {
		port := func(dst *uint32, val string) string {
			n, err := portNumber(val)
			if err != nil {
				return err.Error()
			}
			*dst = n
			return ""
		}
		if why := eachField(v, func(k, val string) string {
			switch k {
			case "published":
				return port(&p.PublishedPort, val)
			case "target":
				return port(&p.TargetPort, val)
			case "protocol":
				p.Protocol = network.IPProtocol(strings.ToLower(val))
			case "mode":
				p.PublishMode = swarm.PortConfigPublishMode(strings.ToLower(val))
			default:
				return fmt.Sprintf("unknown key %q", k)
			}
			return ""
		}); why != "" {
			return bad(why)
		}
	} else {
		spec, proto, ok := strings.Cut(v, "/")
		if ok {
			p.Protocol = network.IPProtocol(strings.ToLower(proto))
		}
		pub, target, two := strings.Cut(spec, ":")
		if !two {
			pub, target = "", spec
		}
		if strings.Contains(spec, "-") {
			return bad("port ranges are not supported; publish each port")
		}
		n, err := portNumber(target)
		if err != nil {
			return bad(err.Error())
		}
		p.TargetPort = n
		if pub != "" {
			if p.PublishedPort, err = portNumber(pub); err != nil {
				return bad(err.Error())
			}
		}
	}
	switch {
	case p.TargetPort == 0:
		return bad("the target port is missing")
	case !slices.Contains([]network.IPProtocol{network.TCP, network.UDP, network.SCTP}, p.Protocol):
		return bad(fmt.Sprintf("protocol %q is not tcp, udp or sctp", p.Protocol))
	case p.PublishMode != swarm.PortConfigPublishModeIngress && p.PublishMode != swarm.PortConfigPublishModeHost:
		return bad(fmt.Sprintf("mode %q is not ingress or host", p.PublishMode))
	}
	return p, nil
}

func portNumber(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil || n == 0 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port from 1 to 65535", s)
	}
	return uint32(n), nil
}

func parsePublishes(vs []string) ([]swarm.PortConfig, error) { return parseAll(vs, parsePublish) }

// parseAll parses each value of a repeated flag, stopping at the first
// error; no value gives nil.
func parseAll[T any](vs []string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, v := range vs {
		x, err := parse(v)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func validateEndpointMode(mode string) error {
	if !slices.Contains(endpointModes, mode) {
		return fmt.Errorf("invalid --endpoint-mode %q: must be %s", mode, stack.QuoteList(endpointModes))
	}
	return nil
}

// editPorts applies --publish-rm (by target port, and protocol when
// given, as docker does) then --publish-add (replacing a port with the
// same target and protocol) to an endpoint spec.
func editPorts(ep **swarm.EndpointSpec, rm []string, add []swarm.PortConfig) error {
	if *ep == nil {
		*ep = &swarm.EndpointSpec{}
	}
	e := *ep
	for _, r := range rm {
		target, proto, hasProto := strings.Cut(r, "/")
		n, err := portNumber(target)
		if err != nil {
			return fmt.Errorf("invalid --publish-rm %q: %v; give the target port, e.g. 80 or 80/udp", r, err)
		}
		e.Ports = slices.DeleteFunc(e.Ports, func(p swarm.PortConfig) bool {
			return p.TargetPort == n && (!hasProto || string(p.Protocol) == strings.ToLower(proto))
		})
	}
	for _, a := range add {
		e.Ports = slices.DeleteFunc(e.Ports, func(p swarm.PortConfig) bool {
			return p.TargetPort == a.TargetPort && p.Protocol == a.Protocol
		})
		e.Ports = append(e.Ports, a)
	}
	return nil
}
