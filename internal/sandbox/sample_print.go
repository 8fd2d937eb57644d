package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/stack"
)

// PrintSampleTasks lists where each task of the sample runs, and the
// address where each node answers for it.
func PrintSampleTasks(ctx context.Context, api *client.Client, sb *Cluster, w io.Writer) error {
	nodes, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return err
	}
	host := map[string]string{}
	for _, n := range nodes.Items {
		host[n.ID] = n.Description.Hostname
	}
	order := map[string]int{}
	for i, n := range sb.Nodes {
		order[n.Name] = i
	}
	tasks, err := api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", SampleServiceName).Add("service", SampleBackendName).Add("desired-state", "running")})
	if err != nil {
		return err
	}
	services := map[string]string{}
	if res, err := api.ServiceList(ctx, client.ServiceListOptions{Filters: stack.Filter(SampleStack)}); err == nil {
		for _, s := range res.Items {
			services[s.ID] = s.Spec.Name
		}
	}
	items := tasks.Items
	if len(items) == 0 {
		return errors.New("the sample stack has no running task")
	}
	slices.SortFunc(items, func(a, b swarm.Task) int {
		return cmp.Or(-strings.Compare(services[a.ServiceID], services[b.ServiceID]), cmp.Compare(order[host[a.NodeID]], order[host[b.NodeID]]))
	})
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tNODE\tSTATE")
	for _, t := range items {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", services[t.ServiceID], host[t.NodeID], t.Status.State)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nPublished on port %d of every node (any node answers, from any task; each page shows the config %s reads, and the page of the %s task it reached by name, which has the secret):\n\n",
		SamplePublishedPort, SampleServiceName, SampleBackendName)
	tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	for _, n := range sb.Nodes {
		if n.PublishHost != "" {
			fmt.Fprintf(tw, "%s\thttp://%s/\n", n.Name, net.JoinHostPort(n.PublishHost, strconv.Itoa(SamplePublishedPort)))
		}
	}
	return tw.Flush()
}

// indent prefixes every line written to w with two spaces.
func indent(w io.Writer) io.Writer { return &indenter{w: w, start: true} }

type indenter struct {
	w     io.Writer
	start bool
}

func (i *indenter) Write(p []byte) (int, error) {
	var b bytes.Buffer
	for _, c := range p {
		if i.start {
			b.WriteString("  ")
		}
		b.WriteByte(c)
		i.start = c == '\n'
	}
	if _, err := i.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
