package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// parseNetwork parses a --network value as docker does: a network name or
// ID, or the long form name=NAME[,alias=ALIAS...][,driver-opt=K=V...].
// The managers resolve the name to the network's ID.
func parseNetwork(v string) (swarm.NetworkAttachmentConfig, error) {
	var a swarm.NetworkAttachmentConfig
	bad := func(why string) (swarm.NetworkAttachmentConfig, error) {
		return swarm.NetworkAttachmentConfig{}, fmt.Errorf("invalid --network %q: %s; use NAME or name=NAME[,alias=ALIAS]", v, why)
	}
	if !strings.Contains(v, "=") {
		a.Target = strings.TrimSpace(v)
	} else if why := eachField(v, func(k, val string) string {
		switch k {
		case "name", "target":
			a.Target = val
		case "alias":
			a.Aliases = append(a.Aliases, val)
		case "driver-opt":
			key, opt, has := strings.Cut(val, "=")
			if !has || key == "" {
				return fmt.Sprintf("driver-opt %q is not key=value", val)
			}
			if a.DriverOpts == nil {
				a.DriverOpts = map[string]string{}
			}
			a.DriverOpts[key] = opt
		default:
			return fmt.Sprintf("unknown key %q", k)
		}
		return ""
	}); why != "" {
		return bad(why)
	}
	if a.Target == "" {
		return bad("the network name is missing")
	}
	return a, nil
}

func parseNetworks(vs []string) ([]swarm.NetworkAttachmentConfig, error) {
	return parseAll(vs, parseNetwork)
}

// networkIDs asks the API for the ID of each network named: a service's
// spec holds IDs, the user gives names. A name the API does not know is
// left out (a removal then matches the target as given; an addition is
// checked by the managers).
func networkIDs(ctx context.Context, api apiClient, refs []string) map[string]string {
	ids := map[string]string{}
	for _, ref := range refs {
		if res, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{}); err == nil {
			ids[ref] = res.Network.ID
		}
	}
	return ids
}

// editNetworks applies --network-rm then --network-add to a service's
// networks, keeping the others. ids maps a name given to the network's
// ID, so a target stored as an ID matches its name.
func editNetworks(nets *[]swarm.NetworkAttachmentConfig, rm []string, add []swarm.NetworkAttachmentConfig, ids map[string]string) error {
	names := func(target, ref string) bool { return target == ref || (ids[ref] != "" && target == ids[ref]) }
	for _, r := range rm {
		before := len(*nets)
		*nets = slices.DeleteFunc(*nets, func(a swarm.NetworkAttachmentConfig) bool { return names(a.Target, r) })
		if len(*nets) == before {
			return fmt.Errorf("invalid --network-rm %s: the service is not attached to that network", r)
		}
	}
	for _, a := range add {
		if slices.ContainsFunc(*nets, func(n swarm.NetworkAttachmentConfig) bool { return names(n.Target, a.Target) }) {
			return fmt.Errorf("service is already attached to network %s", a.Target)
		}
		*nets = append(*nets, a)
	}
	return nil
}

// targets are the networks attachments name.
func targets(as []swarm.NetworkAttachmentConfig) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.Target)
	}
	return out
}
