// Package stack deploys and removes stacks: applications described in
// compose files, turned into services, networks, secrets and configs
// through the Engine API the way `docker stack deploy` does. A stack is
// docker's client-side grouping: nothing more than the objects that
// carry the label com.docker.stack.namespace=STACK. The CLI's `stack`
// commands and the sandbox's sample use it.
package stack

import (
	"context"
	"maps"
	"slices"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// The labels docker's CLI puts on the objects of a stack.
const (
	NamespaceLabel = "com.docker.stack.namespace"
	imageLabel     = "com.docker.stack.image"
	defaultNetwork = "default"
)

// API is what deploying, listing and removing a stack needs of a
// daemon's API; *client.Client has it.
type API interface {
	ServiceList(ctx context.Context, options client.ServiceListOptions) (client.ServiceListResult, error)
	ServiceCreate(ctx context.Context, options client.ServiceCreateOptions) (client.ServiceCreateResult, error)
	ServiceUpdate(ctx context.Context, serviceID string, options client.ServiceUpdateOptions) (client.ServiceUpdateResult, error)
	ServiceRemove(ctx context.Context, serviceID string, options client.ServiceRemoveOptions) (client.ServiceRemoveResult, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
	NetworkInspect(ctx context.Context, networkID string, options client.NetworkInspectOptions) (client.NetworkInspectResult, error)
	NetworkCreate(ctx context.Context, name string, options client.NetworkCreateOptions) (client.NetworkCreateResult, error)
	NetworkRemove(ctx context.Context, networkID string, options client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	SecretList(ctx context.Context, options client.SecretListOptions) (client.SecretListResult, error)
	SecretCreate(ctx context.Context, options client.SecretCreateOptions) (client.SecretCreateResult, error)
	SecretUpdate(ctx context.Context, id string, options client.SecretUpdateOptions) (client.SecretUpdateResult, error)
	SecretRemove(ctx context.Context, id string, options client.SecretRemoveOptions) (client.SecretRemoveResult, error)
	ConfigList(ctx context.Context, options client.ConfigListOptions) (client.ConfigListResult, error)
	ConfigCreate(ctx context.Context, options client.ConfigCreateOptions) (client.ConfigCreateResult, error)
	ConfigUpdate(ctx context.Context, id string, options client.ConfigUpdateOptions) (client.ConfigUpdateResult, error)
	ConfigRemove(ctx context.Context, id string, options client.ConfigRemoveOptions) (client.ConfigRemoveResult, error)
}

var _ API = (*client.Client)(nil)

// Filter selects the objects of one stack.
func Filter(stack string) client.Filters {
	return client.Filters{}.Add("label", NamespaceLabel+"="+stack)
}

// Services lists the services of a stack.
func Services(ctx context.Context, api API, stack string) ([]swarm.Service, error) {
	res, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: Filter(stack)})
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}

// Networks lists the networks of a stack.
func Networks(ctx context.Context, api API, stack string) ([]network.Summary, error) {
	res, err := api.NetworkList(ctx, client.NetworkListOptions{Filters: Filter(stack)})
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}

// ScopeName is NAME in the stack's namespace: STACK_NAME.
func ScopeName(stack, name string) string { return stack + "_" + name }

// withNamespace is labels plus the stack's namespace label.
func withNamespace(stack string, labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	maps.Copy(out, labels)
	out[NamespaceLabel] = stack
	return out
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
