package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// SampleServiceName is the service sandbox up starts.
const SampleServiceName = "web"

// SamplePortBase is where `flotilla sample-web` run by hand listens: task
// slot N serves on 127.0.0.1:SamplePortBase+N (--port-base).
const SamplePortBase = 18080

// SamplePublishedPort is where the sandbox publishes the sample service:
// every node's routing mesh answers on it, at the node's own address.
const SamplePublishedPort = 8080

// The sample's back end and the network it shares with the front end:
// each page of the front names the back-end task that it reached by name.
const (
	SampleBackendName = "api"
	SampleNetwork     = "sample"
)

// startSampleService runs the flotilla binary's sample web server as two
// services on one network, through the public API like any user would: a
// back end (api) and the published front end (web, one task per node)
// that asks it by name on every request. It waits until every task runs.
// It uses the process driver, which every node has, unless every node
// runs Docker (a Docker image is built from the binary: there is no
// registry to pull one from).
func startSampleService(ctx context.Context, sb *Cluster, out io.Writer, timeout time.Duration) error {
	api, err := newAPIClient(sb.Host())
	if err != nil {
		return err
	}
	defer api.Close()
	replicas := uint64(len(sb.Nodes))
	backReplicas := uint64(2)
	// A process task gets its address for target port 80
	// (FLOTILLA_ADDR_80) when published, else its own loopback address
	// (FLOTILLA_IP); sample-web listens there.
	container := func(args ...string) *swarm.ContainerSpec {
		return &swarm.ContainerSpec{Image: sb.Binary, Args: append([]string{"sample-web"}, args...),
			Labels: map[string]string{"com.flotilla.driver": "process"}}
	}
	driverName := "process"
	if image, why := sampleImage(ctx, api, sb.Binary); image != "" {
		// Every node runs Docker: the same program, as a container on its
		// network's bridge, listening on its target port.
		container = func(args ...string) *swarm.ContainerSpec {
			return &swarm.ContainerSpec{Image: image, Args: append([]string{"sample-web", "--addr", ":80"}, args...),
				Labels: map[string]string{"com.flotilla.driver": "docker"}}
		}
		driverName = "docker"
	} else if why != "" {
		fmt.Fprintf(out, "Using the process driver for the sample service: %s\n", why)
	}
	if _, err := api.NetworkCreate(ctx, SampleNetwork, client.NetworkCreateOptions{Driver: "overlay",
		Labels: map[string]string{"com.flotilla.sample": "true"}}); err != nil {
		return fmt.Errorf("create the sample network: %w", err)
	}
	labels := map[string]string{"com.flotilla.sample": "true"}
	nets := []swarm.NetworkAttachmentConfig{{Target: SampleNetwork}}
	specs := []swarm.ServiceSpec{{
		Annotations:  swarm.Annotations{Name: SampleBackendName, Labels: labels},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &backReplicas}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: container(), Networks: nets},
	}, {
		Annotations:  swarm.Annotations{Name: SampleServiceName, Labels: labels},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: container("--backend", SampleBackendName+":80"), Networks: nets},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: SamplePublishedPort}}},
	}}
	var ids []string
	for _, spec := range specs {
		res, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
		if err != nil {
			return fmt.Errorf("create the sample service %s: %w", spec.Name, err)
		}
		ids = append(ids, res.ID)
	}
	fmt.Fprintf(out, "Started the sample services %q (%d replicas, published) and %q (%d replicas, reached by name) on network %q, %s driver\n",
		SampleServiceName, replicas, SampleBackendName, backReplicas, SampleNetwork, driverName)
	deadline := time.Now().Add(timeout)
	for i, id := range ids {
		want := int(*specs[i].Mode.Replicated.Replicas)
		for {
			running, err := runningOf(ctx, api, id)
			if err == nil && running == want {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the sample service %s has %d of %d tasks running after %s; see 'flotilla service ps %s'", specs[i].Name, running, want, timeout, specs[i].Name)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func runningOf(ctx context.Context, api *client.Client, serviceID string) (int, error) {
	res, err := api.ServiceList(ctx, client.ServiceListOptions{Status: true})
	if err != nil {
		return 0, err
	}
	for _, s := range res.Items {
		if s.ID == serviceID && s.ServiceStatus != nil {
			return int(s.ServiceStatus.RunningTasks), nil
		}
	}
	return 0, nil
}

// PrintSampleTasks lists where each sample task runs, and the address
// where each node answers for the service.
func PrintSampleTasks(ctx context.Context, api *client.Client, sb *Cluster, w io.Writer) error {
	nodes, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return err
	}
	host := map[string]string{}
	for _, n := range nodes.Items {
		host[n.ID] = n.Description.Hostname
	}
	tasks, err := api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", SampleServiceName).Add("desired-state", "running")})
	if err != nil {
		return err
	}
	sort.Slice(tasks.Items, func(i, j int) bool { return tasks.Items[i].Slot < tasks.Items[j].Slot })
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "TASK\tNODE\tSTATE")
	for _, t := range tasks.Items {
		fmt.Fprintf(tw, "%s.%d\t%s\t%s\n", SampleServiceName, t.Slot, host[t.NodeID], t.Status.State)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nPublished on port %d of every node (any node answers, from any task; each page names the %s task it reached by name):\n\n", SamplePublishedPort, SampleBackendName)
	tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	for _, n := range sb.Nodes {
		if n.PublishHost != "" {
			fmt.Fprintf(tw, "%s\thttp://%s/\n", n.Name, net.JoinHostPort(n.PublishHost, strconv.Itoa(SamplePublishedPort)))
		}
	}
	return tw.Flush()
}
