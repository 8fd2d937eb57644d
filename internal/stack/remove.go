package stack

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// NetworkWait is how long Remove waits for the tasks of the
// services it removed to end before it gives up on a network they hold.
var NetworkWait = 30 * time.Second

// removeNetwork removes a network of a stack. The managers refuse a
// network still held by a task, and the tasks of the services just
// removed take a moment to stop: when wait is set, it tries again until
// they have.
func removeNetwork(ctx context.Context, api API, id string, wait bool) error {
	deadline := time.Now().Add(NetworkWait)
	for {
		_, err := api.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
		if err == nil || !wait || !strings.Contains(err.Error(), "in use by task") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Remove removes the services of a stack, then its secrets and configs,
// then its networks, as docker does, saying what it does on out. A stack
// with nothing in it is only named on errOut.
func Remove(ctx context.Context, api API, out, errOut io.Writer, stack string) error {
	services, err := Services(ctx, api, stack)
	if err != nil {
		return err
	}
	networks, err := Networks(ctx, api, stack)
	if err != nil {
		return err
	}
	secrets, err := api.SecretList(ctx, client.SecretListOptions{Filters: Filter(stack)})
	if err != nil {
		return err
	}
	configs, err := api.ConfigList(ctx, client.ConfigListOptions{Filters: Filter(stack)})
	if err != nil {
		return err
	}
	if len(services) == 0 && len(networks) == 0 && len(secrets.Items) == 0 && len(configs.Items) == 0 {
		fmt.Fprintf(errOut, "Nothing found in stack: %s\n", stack)
		return nil
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Spec.Name < services[j].Spec.Name })
	sort.Slice(networks, func(i, j int) bool { return networks[i].Name < networks[j].Name })
	var failed []string
	for _, s := range services {
		fmt.Fprintf(out, "Removing service %s\n", s.Spec.Name)
		if _, err := api.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("service %s: %v", s.Spec.Name, err))
		}
	}
	sort.Slice(secrets.Items, func(i, j int) bool { return secrets.Items[i].Spec.Name < secrets.Items[j].Spec.Name })
	for _, x := range secrets.Items {
		fmt.Fprintf(out, "Removing secret %s\n", x.Spec.Name)
		if _, err := api.SecretRemove(ctx, x.ID, client.SecretRemoveOptions{}); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("secret %s: %v", x.Spec.Name, err))
		}
	}
	sort.Slice(configs.Items, func(i, j int) bool { return configs.Items[i].Spec.Name < configs.Items[j].Spec.Name })
	for _, x := range configs.Items {
		fmt.Fprintf(out, "Removing config %s\n", x.Spec.Name)
		if _, err := api.ConfigRemove(ctx, x.ID, client.ConfigRemoveOptions{}); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("config %s: %v", x.Spec.Name, err))
		}
	}
	for _, n := range networks {
		fmt.Fprintf(out, "Removing network %s\n", n.Name)
		if err := removeNetwork(ctx, api, n.ID, len(services) > 0); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			failed = append(failed, fmt.Sprintf("network %s: %v", n.Name, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed to remove some resources from stack %s:\n%s", stack, strings.Join(failed, "\n"))
	}
	return nil
}
