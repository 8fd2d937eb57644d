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

// startSampleService runs the flotilla binary's sample web server as a
// replicated service, one task per node, through the public API like any
// user would, and waits until every task runs. It uses the process driver,
// which every node has (a Docker image would have to be built first: there
// is no registry to pull one from).
func startSampleService(ctx context.Context, sb *Cluster, out io.Writer, timeout time.Duration) error {
	api, err := newAPIClient(sb.Host())
	if err != nil {
		return err
	}
	defer api.Close()
	replicas := uint64(len(sb.Nodes))
	// The process driver hands each task its address for target port 80
	// (FLOTILLA_ADDR_80), which sample-web listens on.
	cs := &swarm.ContainerSpec{
		Image:  sb.Binary,
		Args:   []string{"sample-web"},
		Labels: map[string]string{"com.flotilla.driver": "process"},
	}
	driverName := "process"
	if image, why := sampleImage(ctx, api, sb.Binary); image != "" {
		// Every node runs Docker: the same program, as a container on its
		// bridge, listening on its target port.
		cs.Image = image
		cs.Args = []string{"sample-web", "--addr", ":80"}
		cs.Labels = map[string]string{"com.flotilla.driver": "docker"}
		driverName = "docker"
	} else if why != "" {
		fmt.Fprintf(out, "Using the process driver for the sample service: %s\n", why)
	}
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: SampleServiceName, Labels: map[string]string{"com.flotilla.sample": "true"}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: cs},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: SamplePublishedPort}}},
	}
	res, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		return fmt.Errorf("create the sample service: %w", err)
	}
	fmt.Fprintf(out, "Started the sample service %q (%d replicas, %s driver)\n", SampleServiceName, replicas, driverName)
	deadline := time.Now().Add(timeout)
	for {
		running, err := runningOf(ctx, api, res.ID)
		if err == nil && running == int(replicas) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sample service has %d of %d tasks running after %s; see 'flotilla service ps %s'", running, replicas, timeout, SampleServiceName)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
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
	fmt.Fprintf(w, "\nPublished on port %d of every node (any node answers, from any task):\n\n", SamplePublishedPort)
	tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	for _, n := range sb.Nodes {
		if n.PublishHost != "" {
			fmt.Fprintf(tw, "%s\thttp://%s/\n", n.Name, net.JoinHostPort(n.PublishHost, strconv.Itoa(SamplePublishedPort)))
		}
	}
	return tw.Flush()
}
