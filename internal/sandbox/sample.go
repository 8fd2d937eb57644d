package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/examples/sample"
	"github.com/flotilla-org/flotilla/internal/stack"
)

// The sample: examples/sample/compose.yml (carried in the binary),
// deployed as a stack. Its front end web is published on every node and
// asks its back end api by name on every request; api holds a secret,
// web shows a config.
const (
	// SampleStack is the stack the sandbox deploys the sample as.
	SampleStack = "sample"
	// SampleServiceName is the published front end, one task per node.
	SampleServiceName = SampleStack + "_web"
	// SampleBackendName is the back end the front end reaches by name.
	SampleBackendName = SampleStack + "_api"
	// SampleComposePath is where the sample's compose file is in the
	// repository.
	SampleComposePath = "examples/sample/" + sample.ComposeFile
)

// SamplePortBase is where `flotilla sample-web` run by hand listens: task
// slot N serves on 127.0.0.1:SamplePortBase+N (--port-base).
const SamplePortBase = 18080

// SamplePublishedPort is where the sandbox publishes the sample (its
// SAMPLE_PORT): every node's routing mesh answers on it, at the node's
// own address.
const SamplePublishedPort = 8080

// The task drivers Options.SampleDriver may name; empty is the docker
// driver when every node runs Docker, else the process driver.
const (
	SampleDriverDocker  = "docker"
	SampleDriverProcess = "process"
)

// deploySample deploys the sample stack through the public API like any
// user would, and waits until every task runs. It fills in the compose
// file's variables: the process driver (which every node has) runs the
// binary itself; the docker driver, when every node runs Docker, an
// image made from the binary (there is no registry to pull one from),
// with the binary at /flotilla.
func deploySample(ctx context.Context, sb *Cluster, out io.Writer, driver string, timeout time.Duration) error {
	api, err := newAPIClient(sb.Host())
	if err != nil {
		return err
	}
	defer api.Close()
	image, program := sb.Binary, sb.Binary
	switch driver {
	case "", SampleDriverDocker:
		img, why := sampleImage(ctx, api, sb)
		switch {
		case img != "":
			image, program = img, "/"+sampleImageBinary
			driver = SampleDriverDocker
		case driver == SampleDriverDocker:
			return fmt.Errorf("the sample cannot use the docker driver: %s; leave the driver to the sandbox or choose %s", cmp.Or(why, "not every node offers it (is a Docker Engine running?)"), SampleDriverProcess)
		default:
			if why != "" {
				fmt.Fprintf(out, "Using the process driver for the sample: %s\n", why)
			}
			driver = SampleDriverProcess
		}
	case SampleDriverProcess:
	default:
		return fmt.Errorf("unknown sample driver %q: use %s or %s", driver, SampleDriverDocker, SampleDriverProcess)
	}

	dir, err := os.MkdirTemp("", "flotilla-sample-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.CopyFS(dir, sample.Files); err != nil {
		return fmt.Errorf("writing out the sample's files: %w", err)
	}
	env := []string{"SAMPLE_DRIVER=" + driver, "SAMPLE_IMAGE=" + image, "SAMPLE_PROGRAM=" + program, "SAMPLE_PORT=" + strconv.Itoa(SamplePublishedPort)}
	var libWarnings bytes.Buffer
	project, warnings, err := stack.Load(ctx, SampleStack, []string{filepath.Join(dir, sample.ComposeFile)}, env, &libWarnings)
	if err != nil {
		return fmt.Errorf("loading %s: %w", SampleComposePath, err)
	}
	plan, err := stack.Convert(SampleStack, project)
	if err != nil {
		return fmt.Errorf("converting %s: %w", SampleComposePath, err)
	}
	_, _ = libWarnings.WriteTo(out)
	for _, w := range warnings {
		fmt.Fprintln(out, w)
	}
	fmt.Fprintf(out, "Deploying %s as the stack %q (%s driver)\n", SampleComposePath, SampleStack, driver)
	changes, err := stack.Deploy(ctx, api, indent(out), out, SampleStack, plan, false)
	if err != nil {
		return fmt.Errorf("deploying the sample stack: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for _, c := range changes {
		if err := waitServiceRunning(ctx, api, c.Name, c.ID, deadline); err != nil {
			return err
		}
	}
	return nil
}

// waitServiceRunning polls until every task the service wants runs.
func waitServiceRunning(ctx context.Context, api *client.Client, name, id string, deadline time.Time) error {
	for {
		running, desired, err := serviceTasks(ctx, api, id)
		if err == nil && desired > 0 && running == desired {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sample service %s has %d of %d tasks running; see 'flotilla service ps %s' and the daemons' logs", name, running, desired, name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func serviceTasks(ctx context.Context, api *client.Client, serviceID string) (running, desired int, err error) {
	res, err := api.ServiceList(ctx, client.ServiceListOptions{Status: true, Filters: make(client.Filters).Add("id", serviceID)})
	if err != nil {
		return 0, 0, err
	}
	for _, s := range res.Items {
		if s.ID == serviceID && s.ServiceStatus != nil {
			return int(s.ServiceStatus.RunningTasks), int(s.ServiceStatus.DesiredTasks), nil
		}
	}
	return 0, 0, nil
}

// removeSample removes the sample stack (services, secret, config,
// network), while the managers still run; errors only mean the cleanup
// after it does more.
func removeSample(sb *Cluster, out io.Writer) {
	if len(sb.Nodes) == 0 {
		return
	}
	api, err := newAPIClient(sb.Host())
	if err != nil {
		return
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	if services, err := stack.Services(ctx, api, SampleStack); err != nil || len(services) == 0 {
		return
	}
	fmt.Fprintf(out, "Removing the stack %s\n", SampleStack)
	_ = stack.Remove(ctx, api, indent(out), io.Discard, SampleStack)
}

// removeTaskFiles removes the secret and config files the sandbox's
// nodes left in memory-backed storage (a daemon stopped before its
// tasks were dropped), and the nodes' common directory there once no
// node on this machine uses it.
func removeTaskFiles(sb *Cluster) {
	const base = "/dev/shm/flotilla" // the agent's, for nodes with a tmpfs /dev/shm
	for _, n := range sb.Nodes {
		if n.NodeID != "" && !strings.ContainsAny(n.NodeID, `/\.`) {
			_ = os.RemoveAll(filepath.Join(base, n.NodeID))
		}
	}
	_ = os.Remove(base) // only if empty
}
