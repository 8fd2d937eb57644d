package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Change is a service a deploy created or updated.
type Change struct {
	Name, ID string
	// Updated is set for a service that existed; Before is its update
	// status before the update (to tell the new update from an old one).
	Updated bool
	Before  *swarm.UpdateStatus
}

// Deploy makes the cluster match the plan: external networks are
// checked first (nothing is changed when one is missing), then services
// no longer in the files are pruned (with --prune), the stack's networks
// created if missing, new services created and changed ones updated.
// It returns the services created or updated.
func Deploy(ctx context.Context, api API, out, errOut io.Writer, stack string, plan *Plan, prune bool) ([]Change, error) {
	netIDs := map[string]string{}
	for _, name := range plan.external {
		res, err := api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("network %q is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed", name)
			}
			return nil, err
		}
		netIDs[name] = res.Network.ID
	}
	secrets, configs := secretAPI(api), configAPI(api)
	if err := checkExternalBlobs(ctx, secrets, plan.secrets); err != nil {
		return nil, err
	}
	if err := checkExternalBlobs(ctx, configs, plan.configs); err != nil {
		return nil, err
	}
	existing, err := Services(ctx, api, stack)
	if err != nil {
		return nil, err
	}
	current := map[string]swarm.Service{}
	for _, s := range existing {
		current[s.Spec.Name] = s
	}
	if prune {
		for _, name := range sortedKeys(current) {
			if _, keep := plan.services[name]; keep {
				continue
			}
			fmt.Fprintf(out, "Removing service %s\n", name)
			if _, err := api.ServiceRemove(ctx, current[name].ID, client.ServiceRemoveOptions{}); err != nil {
				return nil, fmt.Errorf("failed to remove service %s: %w", name, err)
			}
		}
	}

	nets, err := Networks(ctx, api, stack)
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		netIDs[n.Name] = n.ID
	}
	for _, name := range sortedKeys(plan.networks) {
		if netIDs[name] != "" {
			continue
		}
		fmt.Fprintf(out, "Creating network %s\n", name)
		res, err := api.NetworkCreate(ctx, name, plan.networks[name])
		if err != nil {
			return nil, fmt.Errorf("failed to create network %s: %w", name, err)
		}
		netIDs[name] = res.ID
	}

	secretIDs, err := deployBlobs(ctx, secrets, out, plan.secrets)
	if err != nil {
		return nil, err
	}
	configIDs, err := deployBlobs(ctx, configs, out, plan.configs)
	if err != nil {
		return nil, err
	}

	var changes []Change
	for _, name := range sortedKeys(plan.services) {
		spec := plan.services[name]
		// The managers keep network IDs: give them, so an unchanged
		// service compares equal.
		for i, a := range spec.TaskTemplate.Networks {
			if id := netIDs[a.Target]; id != "" {
				spec.TaskTemplate.Networks[i].Target = id
			}
		}
		// The managers keep the IDs of secrets and configs too.
		if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
			for _, r := range cs.Secrets {
				r.SecretID = secretIDs[r.SecretName]
			}
			for _, r := range cs.Configs {
				r.ConfigID = configIDs[r.ConfigName]
			}
		}
		// The API client tags an untagged image :latest on the way out;
		// compare what the managers will hold.
		if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
			cs.Image = imageWithTag(cs.Image)
		}
		cur, exists := current[name]
		if !exists {
			fmt.Fprintf(out, "Creating service %s\n", name)
			res, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
			if err != nil {
				return nil, fmt.Errorf("failed to create service %s: %w", name, err)
			}
			printWarnings(errOut, res.Warnings)
			changes = append(changes, Change{Name: name, ID: res.ID})
			continue
		}
		// As docker: a stack has no --force, keep the service's counter.
		spec.TaskTemplate.ForceUpdate = cur.Spec.TaskTemplate.ForceUpdate
		if sameSpec(spec, cur.Spec) {
			fmt.Fprintf(out, "Service %s is up to date\n", name)
			continue
		}
		fmt.Fprintf(out, "Updating service %s (id: %s)\n", name, cur.ID)
		res, err := api.ServiceUpdate(ctx, cur.ID, client.ServiceUpdateOptions{Version: cur.Version, Spec: spec})
		if err != nil {
			return nil, fmt.Errorf("failed to update service %s: %w", name, err)
		}
		printWarnings(errOut, res.Warnings)
		changes = append(changes, Change{Name: name, ID: cur.ID, Updated: true, Before: cur.UpdateStatus})
	}
	return changes, nil
}

// imageWithTag is image as the API client sends it: ":latest" added to
// an image reference without tag or digest (a process driver command is
// left as it is when it is no image reference).
func imageWithTag(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

// sameSpec says whether two service specs have the same wire form.
func sameSpec(a, b swarm.ServiceSpec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func printWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintln(w, s)
	}
}
