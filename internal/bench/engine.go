package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// EngineOptions configures RunEngine.
type EngineOptions struct {
	Binary     string
	Dir        string
	Replicas   int
	Rounds     int
	DockerHost string
	// Concurrency are the numbers of containers the engine row creates and
	// starts at once (one measurement per level; the fastest is the
	// engine's limit). None (or only 0): no engine row.
	Concurrency []int
	// DockerSwarm adds Docker's own swarm mode, in a throwaway swarm of the
	// local engine (DockerHost must be empty or dockerEngineHost).
	DockerSwarm bool
	Out         io.Writer
}

// EngineRow is one way of running Replicas containers, Rounds times.
type EngineRow struct {
	Name string
	Up   []time.Duration // create → all running
	Down []time.Duration // remove → all containers gone
}

// EngineResult is what RunEngine measured.
type EngineResult struct {
	Engine   string      // server version
	Limit    []EngineRow // the engine straight, one row per concurrency level
	Flotilla EngineRow
	Swarm    *EngineRow // with DockerSwarm
}

// Fastest is the engine row with the lowest median create → all running.
func (r EngineResult) Fastest() (EngineRow, bool) {
	var best EngineRow
	for _, l := range r.Limit {
		if m, _ := Summary(l.Up); len(l.Up) > 0 && (best.Up == nil || m < first(Summary(best.Up))) {
			best = l
		}
	}
	return best, best.Up != nil
}

func first(a, _ time.Duration) time.Duration { return a }

// RunEngine measures how long Replicas containers of a small image take to
// run and to be removed, three ways on the same engine: straight through
// the Engine API (create + start, at each concurrency level), as a
// flotilla service on one node with the docker driver, and (DockerSwarm)
// as a service of Docker's own swarm mode. The image holds this (static)
// flotilla binary running its sample web server: there is no registry to
// pull anything from. Whatever happens, including SIGINT or SIGTERM, every
// container, service and image the run made is removed and the engine
// leaves the swarm mode the run put it in.
func RunEngine(ctx context.Context, o EngineOptions) (res EngineResult, err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop() // after the cleanups below: a signal meanwhile does not cut them short
	if o.DockerHost == "" {
		o.DockerHost = dockerEngineHost
	}
	if o.DockerSwarm && o.DockerHost != dockerEngineHost {
		return res, fmt.Errorf("the comparison with Docker's swarm mode runs on the local engine only (%s), not %s", dockerEngineHost, o.DockerHost)
	}
	if o.Rounds < 1 {
		o.Rounds = 1
	}
	if err := sandbox.StaticBinary(o.Binary); err != nil {
		return res, err
	}
	engine, err := client.New(client.WithHost(o.DockerHost))
	if err != nil {
		return res, err
	}
	defer engine.Close()
	if _, err := engine.Ping(ctx, client.PingOptions{}); err != nil {
		return res, fmt.Errorf("no Docker Engine answers at %s: %w", o.DockerHost, err)
	}
	if v, err := engine.ServerVersion(ctx, client.ServerVersionOptions{}); err == nil {
		res.Engine = v.Version
	}
	image := fmt.Sprintf("flotilla-bench/sample:%d", os.Getpid())
	if err := sandbox.ImportBinaryImage(ctx, engine, o.Binary, image); err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, rerr := engine.ImageRemove(cctx, image, client.ImageRemoveOptions{Force: true, PruneChildren: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			err = errors.Join(err, fmt.Errorf("the bench's image is left behind: remove it with 'docker rmi -f %s': %w", image, rerr))
		}
	}()
	args := []string{"sample-web", "--addr", "0.0.0.0:8080"}

	o.Concurrency = slices.DeleteFunc(slices.Clone(o.Concurrency), func(c int) bool { return c < 1 })
	// Every round runs each row once, so that a change in the machine's
	// load (it is shared) weighs on all of them alike.
	res.Limit = make([]EngineRow, len(o.Concurrency))
	for i, c := range o.Concurrency {
		res.Limit[i].Name = fmt.Sprintf("engine, %d at once", c)
	}
	res.Flotilla.Name = "flotilla (docker driver)"
	if o.DockerSwarm {
		res.Swarm = &EngineRow{Name: "docker swarm mode"}
	}
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: o.Dir, Managers: 1, Binary: o.Binary, Out: io.Discard,
		DaemonArgs: []string{"--docker-host", o.DockerHost}})
	if err != nil {
		return res, err
	}
	defer sandbox.Down(o.Dir)
	api, err := client.New(client.WithHost(sb.Host()))
	if err != nil {
		return res, err
	}
	defer api.Close()
	for round := range o.Rounds {
		for i, c := range o.Concurrency {
			row := &res.Limit[i]
			up, down, err := engineStraight(ctx, engine, image, args, o.Replicas, c)
			if err != nil {
				return res, fmt.Errorf("%s: %w", row.Name, err)
			}
			row.add(o.Out, round, o.Replicas, up, down)
		}
		if err := serviceRound(ctx, engine, api, o, &res.Flotilla, round, swarm.ServiceSpec{
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image, Args: args,
				Labels: map[string]string{"com.flotilla.driver": "docker"}}},
		}); err != nil {
			return res, err
		}
		if o.DockerSwarm {
			if err := swarmRound(ctx, engine, o, res.Swarm, round, image, args); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// add records one round's figures and prints them.
func (r *EngineRow) add(out io.Writer, round, replicas int, up, down time.Duration) {
	r.Up, r.Down = append(r.Up, up), append(r.Down, down)
	progress(out, "%-24s round %d: %d running after %v, removed after %v (load %s)\n", r.Name, round+1, replicas,
		up.Round(time.Millisecond), down.Round(time.Millisecond), loadAverage())
}

// loadAverage is the machine's load average over the last minute.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// engineStraight creates and starts n containers through the Engine API,
// conc at once, with the configuration the docker driver gives a task,
// then stops and removes them as many at once; it times both.
func engineStraight(ctx context.Context, engine *client.Client, image string, args []string, n, conc int) (up, down time.Duration, err error) {
	run := strconv.Itoa(os.Getpid())
	stopSecs := 10
	ids := make([]string, n)
	defer func() {
		// Whatever failed, nothing of this run is left.
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		l, lerr := engine.ContainerList(cctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "com.flotilla.bench="+run)})
		if lerr != nil {
			err = errors.Join(err, lerr)
			return
		}
		for _, c := range l.Items {
			if _, rerr := engine.ContainerRemove(cctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
				err = errors.Join(err, fmt.Errorf("container %s is left behind: remove it with 'docker rm -f %s': %w", c.ID, c.ID, rerr))
			}
		}
	}()
	t0 := time.Now()
	err = inParallel(n, conc, func(i int) error {
		taskID := fmt.Sprintf("bench%d", i)
		name := fmt.Sprintf("flotilla-bench-engine.%d.%s", i+1, taskID)
		cfg := &container.Config{
			Image: image, Cmd: args, StopTimeout: &stopSecs,
			Labels: map[string]string{
				"com.flotilla.bench":          run,
				"com.docker.swarm.task.id":    taskID,
				"com.docker.swarm.task.name":  name,
				"com.docker.swarm.service.id": "bench-engine-" + run,
				"com.flotilla.driver":         "docker",
			},
		}
		hc := &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled}}
		created, err := engine.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
		if err != nil {
			return err
		}
		ids[i] = created.ID
		_, err = engine.ContainerStart(ctx, created.ID, client.ContainerStartOptions{})
		return err
	})
	up = time.Since(t0)
	if err != nil {
		return up, 0, err
	}
	t1 := time.Now()
	err = inParallel(n, conc, func(i int) error {
		if _, err := engine.ContainerStop(ctx, ids[i], client.ContainerStopOptions{Timeout: &stopSecs}); err != nil {
			return err
		}
		_, err := engine.ContainerRemove(ctx, ids[i], client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		return err
	})
	return up, time.Since(t1), err
}

// inParallel runs f(0) … f(n-1), conc at a time, and returns the first
// error.
func inParallel(n, conc int, f func(int) error) error {
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range max(conc, 1) {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// serviceRound creates the service through api (flotilla's or the
// engine's own swarm API), times until all its replicas run as api reports
// them, removes it and times until the engine has none of its containers
// left.
func serviceRound(ctx context.Context, engine, api *client.Client, o EngineOptions, row *EngineRow, round int, spec swarm.ServiceSpec) error {
	replicas := uint64(o.Replicas)
	spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}}
	spec.Annotations.Name = fmt.Sprintf("flotilla-bench-engine-%d-%d", os.Getpid(), round)
	t0 := time.Now()
	svc, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		return fmt.Errorf("%s: service create: %w", row.Name, err)
	}
	err = waitRunning(ctx, api, o.Replicas, 25, 10*time.Minute, t0, o.Out)
	up := time.Since(t0)
	// Removed whatever happened, and waited for: the image goes only once
	// the containers have.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	t1 := time.Now()
	_, rerr := api.ServiceRemove(cctx, svc.ID, client.ServiceRemoveOptions{})
	if rerr == nil {
		rerr = serviceContainersGone(cctx, engine, svc.ID, 5*time.Minute)
	}
	down := time.Since(t1)
	if err = errors.Join(err, rerr); err != nil {
		return fmt.Errorf("%s: %w", row.Name, err)
	}
	row.add(o.Out, round, o.Replicas, up, down)
	return nil
}

// swarmRound runs the service once in Docker's swarm mode, in a throwaway
// swarm of the engine (made and left again each round).
func swarmRound(ctx context.Context, engine *client.Client, o EngineOptions, row *EngineRow, round int, image string, args []string) (err error) {
	_, leave, err := throwawaySwarm(ctx, engine, o.Out)
	if leave != nil {
		defer func() { err = errors.Join(err, leave()) }()
	}
	if err != nil {
		return err
	}
	return serviceRound(ctx, engine, engine, o, row, round, swarm.ServiceSpec{
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image, Args: args}},
	})
}
