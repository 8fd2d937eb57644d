package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// EngineOptions configures RunEngine.
type EngineOptions struct {
	Binary     string
	Dir        string
	Replicas   int
	DockerHost string
	Out        io.Writer
}

// RunEngine measures how long Replicas containers of a small image take to
// reach running through the docker driver on one node. The image holds
// this (static) flotilla binary running its sample web server: there is no
// registry to pull anything from.
func RunEngine(ctx context.Context, o EngineOptions) (time.Duration, error) {
	if o.DockerHost == "" {
		o.DockerHost = "unix:///var/run/docker.sock"
	}
	if err := sandbox.StaticBinary(o.Binary); err != nil {
		return 0, err
	}
	engine, err := client.New(client.WithHost(o.DockerHost))
	if err != nil {
		return 0, err
	}
	defer engine.Close()
	if _, err := engine.Ping(ctx, client.PingOptions{}); err != nil {
		return 0, fmt.Errorf("no Docker Engine answers at %s: %w", o.DockerHost, err)
	}
	image := fmt.Sprintf("flotilla-bench/sample:%d", os.Getpid())
	if err := sandbox.ImportBinaryImage(ctx, engine, o.Binary, image); err != nil {
		return 0, err
	}
	defer func() {
		_, _ = engine.ImageRemove(context.Background(), image, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	}()
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: o.Dir, Managers: 1, Binary: o.Binary, Out: io.Discard,
		DaemonArgs: []string{"--docker-host", o.DockerHost}})
	if err != nil {
		return 0, err
	}
	defer sandbox.Down(o.Dir)
	api, err := client.New(client.WithHost(sb.Host()))
	if err != nil {
		return 0, err
	}
	defer api.Close()
	replicas := uint64(o.Replicas)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "engine"},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image,
			Args:   []string{"sample-web", "--addr", "0.0.0.0:8080"},
			Labels: map[string]string{"com.flotilla.driver": "docker"}}},
	}
	t0 := time.Now()
	svc, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		return 0, err
	}
	last := -1
	err = poll(ctx, 10*time.Minute, func() error {
		n, err := runningTasks(ctx, api)
		if err != nil {
			return err
		}
		if n/10 != last/10 {
			progress(o.Out, "  %3d running after %v\n", n, time.Since(t0).Round(time.Millisecond))
			last = n
		}
		if n < o.Replicas {
			return fmt.Errorf("%d of %d running", n, o.Replicas)
		}
		return nil
	})
	took := time.Since(t0)
	// Remove the service and wait for its containers to go before the
	// image is removed.
	_, _ = api.ServiceRemove(ctx, svc.ID, client.ServiceRemoveOptions{})
	_ = poll(ctx, 2*time.Minute, func() error {
		res, err := engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "com.docker.swarm.service.id="+svc.ID)})
		if err != nil {
			return err
		}
		if len(res.Items) > 0 {
			return fmt.Errorf("%d containers left", len(res.Items))
		}
		return nil
	})
	return took, err
}
