package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// DockerMeshOptions configures RunDockerMesh.
type DockerMeshOptions struct {
	Binary   string
	Clients  int
	Duration time.Duration
	Out      io.Writer
}

// DockerMeshTarget is one way of reaching the backend and what it
// measured.
type DockerMeshTarget struct {
	Name string
	URL  string
	Load LoadResult
	Bulk float64 // bytes/s
	Err  error   // it never answered: not measured
}

// DockerMeshResult is the same load as RunMesh's against a Docker swarm
// service: first the container directly, then the ways through the
// engine's published ports.
type DockerMeshResult struct {
	Engine  string // server version
	Targets []DockerMeshTarget
}

// RunDockerMesh puts the local Docker Engine in swarm mode for the length
// of the run (refusing an engine already in it: that swarm is not ours),
// runs the bench's backend as a swarm service published through Docker's
// ingress routing mesh, and loads it as RunMesh loads flotilla's. Whatever
// happens, including SIGINT or SIGTERM, the engine leaves swarm mode and
// the service and image are removed before it returns.
func RunDockerMesh(ctx context.Context, o DockerMeshOptions) (res DockerMeshResult, err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop() // after the cleanups below: a signal meanwhile does not cut them short
	if err := sandbox.StaticBinary(o.Binary); err != nil {
		return res, err
	}
	engine, err := client.New(client.WithHost(dockerEngineHost))
	if err != nil {
		return res, err
	}
	defer engine.Close()
	if _, err := engine.Ping(ctx, client.PingOptions{}); err != nil {
		return res, fmt.Errorf("no Docker Engine answers at %s: %w", dockerEngineHost, err)
	}
	// From here on, any swarm state of the engine is this run's: leave it
	// whatever happens.
	version, leave, err := throwawaySwarm(ctx, engine, o.Out)
	res.Engine = version
	if leave != nil {
		defer func() { err = errors.Join(err, leave()) }()
	}
	if err != nil {
		return res, err
	}

	image := fmt.Sprintf("flotilla-bench/dockermesh:%d", os.Getpid())
	if err := sandbox.ImportBinaryImage(ctx, engine, o.Binary, image); err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = engine.ImageRemove(cctx, image, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	}()

	ingressPort, err := freeTCPPort()
	if err != nil {
		return res, err
	}
	hostPort, err := freeTCPPort()
	if err != nil {
		return res, err
	}
	one := uint64(1)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: fmt.Sprintf("flotilla-bench-mesh-%d", os.Getpid())},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image, Args: []string{"bench", "backend"},
			Env: []string{"FLOTILLA_ADDR_80=0.0.0.0:80", "FLOTILLA_TASK_ID={{.Task.ID}}"}}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{
			{TargetPort: 80, PublishedPort: uint32(ingressPort), PublishMode: swarm.PortConfigPublishModeIngress},
			{TargetPort: 80, PublishedPort: uint32(hostPort), PublishMode: swarm.PortConfigPublishModeHost},
		}},
	}
	created, err := engine.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		return res, fmt.Errorf("docker service create: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, _ = engine.ServiceRemove(cctx, created.ID, client.ServiceRemoveOptions{})
		// The image goes only once the containers have.
		_ = serviceContainersGone(cctx, engine, created.ID, 2*time.Minute)
	}()

	// The task runs; the host reaches its container on docker_gwbridge.
	var direct string
	if err := poll(ctx, 2*time.Minute, func() error {
		tl, err := engine.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", created.ID)})
		if err != nil {
			return err
		}
		for _, t := range tl.Items {
			if t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateRejected {
				return fmt.Errorf("task %s %s: %s", t.ID, t.Status.State, t.Status.Err)
			}
			if t.Status.State != swarm.TaskStateRunning || t.Status.ContainerStatus == nil {
				continue
			}
			gw, err := engine.NetworkInspect(ctx, gwBridge, client.NetworkInspectOptions{})
			if err != nil {
				return err
			}
			ep, ok := gw.Network.Containers[t.Status.ContainerStatus.ContainerID]
			if !ok || !ep.IPv4Address.IsValid() {
				return fmt.Errorf("container %.12s has no address on %s yet", t.Status.ContainerStatus.ContainerID, gwBridge)
			}
			direct = fmt.Sprintf("http://%s/", net.JoinHostPort(ep.IPv4Address.Addr().String(), "80"))
			_, err = taskOf(ctx, direct)
			return err
		}
		return fmt.Errorf("the service's task is not running yet")
	}); err != nil {
		return res, fmt.Errorf("waiting for the backend container: %w", err)
	}
	res.Targets = []DockerMeshTarget{
		{Name: "direct", URL: direct},
		{Name: "docker ingress", URL: fmt.Sprintf("http://%s/", net.JoinHostPort("127.0.0.1", strconv.Itoa(ingressPort)))},
		{Name: "docker-proxy", URL: fmt.Sprintf("http://%s/", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)))},
	}
	for i := range res.Targets[1:] {
		t := &res.Targets[1+i]
		var last error
		if err := poll(ctx, time.Minute, func() error {
			_, last = taskOf(ctx, t.URL)
			return last
		}); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if last == nil {
				last = err
			}
			t.Err = fmt.Errorf("no answer within a minute while the container answered at %s: %w", direct, last)
			if _, err := os.Stat("/proc/net/ip_vs"); t.Name == "docker ingress" && err != nil {
				t.Err = fmt.Errorf("%w (this kernel has no IPVS, which the ingress sandbox balances with: /proc/net/ip_vs is missing; the engine's log says why)", t.Err)
			}
			progress(o.Out, "%-16s %s: %v\n", t.Name, t.URL, t.Err)
		}
	}
	progress(o.Out, "backend container at %s (%s); on 127.0.0.1, ingress port %d and host-mode port %d (docker-proxy)\n", direct, gwBridge, ingressPort, hostPort)

	for i := range res.Targets {
		t := &res.Targets[i]
		if t.Err != nil {
			continue
		}
		httpLoad(ctx, t.URL, o.Clients, time.Second) // warm up connections and caches
		t.Load = httpLoad(ctx, t.URL, o.Clients, o.Duration)
		if t.Bulk, err = bulkRate(ctx, t.URL+"bulk", o.Duration); err != nil {
			return res, fmt.Errorf("bulk %s: %w", t.Name, err)
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		progress(o.Out, "%-16s %s  bulk %6.0f MiB/s\n", t.Name, t.Load, t.Bulk/(1<<20))
	}
	return res, nil
}

// plusMinus is d with its sign, "+" included.
func plusMinus(d time.Duration) string {
	if d < 0 {
		return "-" + (-d).Round(time.Microsecond).String()
	}
	return "+" + d.Round(time.Microsecond).String()
}
