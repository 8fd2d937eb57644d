package bench

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// RecoveryOptions configures RunRecovery.
type RecoveryOptions struct {
	Binary   string
	Dir      string
	Rounds   int
	Replicas int
	Out      io.Writer
}

// RunRecovery measures, with default settings, how long a replicated
// service takes to be back at full count on other nodes after kill -9 of a
// worker that runs part of it (3 managers, 3 workers, process driver).
func RunRecovery(ctx context.Context, o RecoveryOptions) ([]time.Duration, error) {
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: o.Dir, Managers: 3, Workers: 3, Binary: o.Binary, Out: io.Discard})
	if err != nil {
		return nil, err
	}
	defer sandbox.Down(o.Dir)
	api, err := client.New(client.WithHost(sb.Host()))
	if err != nil {
		return nil, err
	}
	defer api.Close()
	replicas := uint64(o.Replicas)
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: "recovery"},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "/bin/sleep", Args: []string{"100000"}, Labels: map[string]string{"com.flotilla.driver": "process"}}},
	}
	svc, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		return nil, err
	}
	workers := sb.Workers()
	// Restarted workers are not in the sandbox's record: stop them here.
	var restarted []int
	defer func() {
		for _, pid := range restarted {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}()
	var out []time.Duration
	for round := 0; round < o.Rounds; round++ {
		if err := poll(ctx, time.Minute, func() error { return fullyRunning(ctx, api, svc.ID, o.Replicas, "") }); err != nil {
			return out, fmt.Errorf("round %d: service not at full count before the kill: %w", round, err)
		}
		victim := workers[round%len(workers)]
		victimID, err := nodeIDByName(ctx, api, victim.Name)
		if err != nil {
			return out, err
		}
		if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
			return out, err
		}
		t0 := time.Now()
		if err := poll(ctx, time.Minute, func() error { return fullyRunning(ctx, api, svc.ID, o.Replicas, victimID) }); err != nil {
			return out, fmt.Errorf("round %d: not back at full count: %w", round, err)
		}
		d := time.Since(t0)
		out = append(out, d)
		progress(o.Out, "round %d: %d/%d running again %v after kill -9 of %s\n", round+1, o.Replicas, o.Replicas, d.Round(time.Millisecond), victim.Name)
		pid, err := restart(victim, sb.Binary)
		if err != nil {
			return out, err
		}
		restarted = append(restarted, pid)
		for i := range sb.Nodes {
			if sb.Nodes[i].Name == victim.Name {
				sb.Nodes[i].PID = pid
			}
		}
		workers[round%len(workers)].PID = pid
		if err := poll(ctx, time.Minute, func() error { return allReady(ctx, api, 0) }); err != nil {
			return out, err
		}
	}
	return out, nil
}

func nodeIDByName(ctx context.Context, api *client.Client, name string) (string, error) {
	res, err := api.NodeInspect(ctx, name, client.NodeInspectOptions{})
	if err != nil {
		return "", err
	}
	return res.Node.ID, nil
}

// fullyRunning: want tasks desired and observed running, none on avoid.
func fullyRunning(ctx context.Context, api *client.Client, serviceID string, want int, avoid string) error {
	res, err := api.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", serviceID).Add("desired-state", "running")})
	if err != nil {
		return err
	}
	n := 0
	for _, t := range res.Items {
		if t.Status.State == swarm.TaskStateRunning && t.NodeID != avoid {
			n++
		}
	}
	if n < want {
		return fmt.Errorf("%d of %d running", n, want)
	}
	return nil
}
