package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// dockerEngineHost is the only engine the comparisons with Docker's swarm
// mode touch: DOCKER_HOST is ignored on purpose, so that a run never puts
// a remote engine in swarm mode.
const dockerEngineHost = "unix:///var/run/docker.sock"

// gwBridge is the bridge a swarm task's container uses to reach the
// host (and the host to reach it); Docker makes it on swarm init.
const gwBridge = "docker_gwbridge"

// throwawaySwarm puts the engine in swarm mode for one run: `docker swarm
// init --advertise-addr 127.0.0.1`, refusing an engine already in swarm
// mode (that swarm is not ours). It returns the engine's version and
// leave, which takes the engine out of swarm mode again (and removes
// docker_gwbridge if the run made it). leave is set, and must be called
// whatever happens, as soon as init was tried: a cancelled context may
// leave it half done. The caller keeps SIGINT and SIGTERM from killing the
// process before leave has run (signal.NotifyContext).
func throwawaySwarm(ctx context.Context, engine *client.Client, out io.Writer) (version string, leave func() error, err error) {
	info, err := engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", nil, err
	}
	version = info.Info.ServerVersion
	if st := info.Info.Swarm.LocalNodeState; st != swarm.LocalNodeStateInactive {
		return version, nil, fmt.Errorf("the engine at %s is already in swarm mode (%s): refusing to touch a swarm this run did not make", dockerEngineHost, st)
	}
	_, gwErr := engine.NetworkInspect(ctx, gwBridge, client.NetworkInspectOptions{})
	hadGwBridge := gwErr == nil
	leave = func() error {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := leaveSwarm(cctx, engine); err != nil {
			return err
		}
		progress(out, "left swarm mode\n")
		if !hadGwBridge {
			if _, err := engine.NetworkRemove(cctx, gwBridge, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				return fmt.Errorf("swarm mode left, but the %s network it made is still there: remove it with 'docker network rm %s': %w", gwBridge, gwBridge, err)
			}
		}
		return nil
	}
	progress(out, "docker swarm init --advertise-addr 127.0.0.1 (engine %s)\n", version)
	if _, err := engine.SwarmInit(ctx, client.SwarmInitOptions{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		return version, leave, fmt.Errorf("docker swarm init: %w", err)
	}
	return version, leave, nil
}

// leaveSwarm takes the engine out of swarm mode and checks that it is.
func leaveSwarm(ctx context.Context, engine *client.Client) error {
	info, err := engine.Info(ctx, client.InfoOptions{})
	if err == nil && info.Info.Swarm.LocalNodeState == swarm.LocalNodeStateInactive {
		return nil
	}
	if _, err := engine.SwarmLeave(ctx, client.SwarmLeaveOptions{Force: true}); err != nil {
		return fmt.Errorf("docker swarm leave --force: %w (leave it by hand)", err)
	}
	info, err = engine.Info(ctx, client.InfoOptions{})
	if err != nil {
		return err
	}
	if st := info.Info.Swarm.LocalNodeState; st != swarm.LocalNodeStateInactive {
		return fmt.Errorf("the engine is still in swarm mode (%s) after leaving: run docker swarm leave --force", st)
	}
	return nil
}

// serviceContainersGone waits until the engine has no container of the
// (Docker or flotilla) service left.
func serviceContainersGone(ctx context.Context, engine *client.Client, serviceID string, timeout time.Duration) error {
	return poll(ctx, timeout, func() error {
		l, err := engine.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "com.docker.swarm.service.id="+serviceID)})
		if err != nil {
			return err
		}
		if len(l.Items) > 0 {
			return fmt.Errorf("%d containers left", len(l.Items))
		}
		return nil
	})
}
