// Package bench measures what users feel: how long a write waits after the
// leader dies, and how long a dead node takes to show as Down. It runs the
// real binary as separate processes on 127.0.0.1 (a sandbox), so the
// figures include TLS, Raft and the Engine API end to end.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// FailoverResult is one kill -9 of the leader.
type FailoverResult struct {
	WriteAfter time.Duration // until a write through a surviving manager succeeded
	DownAfter  time.Duration // until the dead leader showed as Down
}

// FailoverOptions configures RunFailover.
type FailoverOptions struct {
	Binary string
	Dir    string
	Rounds int
	Out    io.Writer
}

// RunFailover starts a 3-manager sandbox and kills its leader Rounds times,
// restarting it after each measurement.
func RunFailover(ctx context.Context, o FailoverOptions) ([]FailoverResult, error) {
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: o.Dir, Managers: 3, Binary: o.Binary, Out: io.Discard})
	if err != nil {
		return nil, err
	}
	defer sandbox.Down(o.Dir)
	nodes := sb.Managers()
	clients := map[string]*client.Client{}
	for _, n := range nodes {
		c, err := client.New(client.WithHost(n.Host))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		clients[n.Name] = c
	}
	var out []FailoverResult
	// Restarted managers are not in the sandbox's record: stop them here.
	defer func() {
		for _, n := range nodes {
			_ = syscall.Kill(n.PID, syscall.SIGKILL)
		}
	}()
	for round := 0; round < o.Rounds; round++ {
		leader, err := findLeader(ctx, nodes, clients)
		if err != nil {
			return out, err
		}
		var survivor sandbox.Node
		for _, n := range nodes {
			if n.Name != leader.Name {
				survivor = n
				break
			}
		}
		sc := clients[survivor.Name]
		leaderID, err := nodeID(ctx, clients[leader.Name])
		if err != nil {
			return out, err
		}
		if err := syscall.Kill(leader.PID, syscall.SIGKILL); err != nil {
			return out, fmt.Errorf("kill %s: %w", leader.Name, err)
		}
		t0 := time.Now()
		var r FailoverResult
		if err := poll(ctx, 30*time.Second, func() error { return labelWrite(ctx, sc, survivor.Name, round) }); err != nil {
			return out, fmt.Errorf("round %d: no write succeeded after the leader died: %w", round, err)
		}
		r.WriteAfter = time.Since(t0)
		if err := poll(ctx, 30*time.Second, func() error { return isDown(ctx, sc, leaderID) }); err != nil {
			return out, fmt.Errorf("round %d: dead leader never showed Down: %w", round, err)
		}
		r.DownAfter = time.Since(t0)
		out = append(out, r)
		if o.Out != nil {
			fmt.Fprintf(o.Out, "round %d: write after %v, node down after %v\n", round+1, r.WriteAfter.Round(time.Millisecond), r.DownAfter.Round(time.Millisecond))
		}
		pid, err := restart(leader, sb.Binary)
		if err != nil {
			return out, err
		}
		for i := range nodes {
			if nodes[i].Name == leader.Name {
				nodes[i].PID = pid
			}
		}
		// Wait for the restarted manager to be back before the next kill,
		// or the next round would measure a two-manager cluster.
		if err := poll(ctx, 60*time.Second, func() error { return allReady(ctx, sc, 3) }); err != nil {
			return out, fmt.Errorf("round %d: restarted manager did not come back: %w", round, err)
		}
	}
	return out, nil
}

func findLeader(ctx context.Context, nodes []sandbox.Node, clients map[string]*client.Client) (sandbox.Node, error) {
	var leader sandbox.Node
	err := poll(ctx, 30*time.Second, func() error {
		for _, n := range nodes {
			res, err := clients[n.Name].NodeList(ctx, client.NodeListOptions{})
			if err != nil {
				continue
			}
			if l, ok := leaderIn(nodes, res.Items); ok {
				leader = l
				return nil
			}
		}
		return errors.New("no leader")
	})
	return leader, err
}

// leaderIn returns the sandbox node that a node list names the leader.
func leaderIn(nodes []sandbox.Node, list []swarm.Node) (sandbox.Node, bool) {
	for _, nd := range list {
		if nd.ManagerStatus != nil && nd.ManagerStatus.Leader {
			for _, m := range nodes {
				if m.Name == nd.Description.Hostname {
					return m, true
				}
			}
		}
	}
	return sandbox.Node{}, false
}

func nodeID(ctx context.Context, c *client.Client) (string, error) {
	res, err := c.Info(ctx, client.InfoOptions{})
	if err != nil {
		return "", err
	}
	return res.Info.Swarm.NodeID, nil
}

func labelWrite(ctx context.Context, c *client.Client, self string, round int) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := c.NodeInspect(ctx, self, client.NodeInspectOptions{})
	if err != nil {
		return err
	}
	n := res.Node
	spec := n.Spec
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels["bench.round"] = fmt.Sprint(round)
	_, err = c.NodeUpdate(ctx, n.ID, client.NodeUpdateOptions{Version: n.Version, Spec: spec})
	return err
}

func isDown(ctx context.Context, c *client.Client, id string) error {
	res, err := c.NodeInspect(ctx, id, client.NodeInspectOptions{})
	if err != nil {
		return err
	}
	if res.Node.Status.State != swarm.NodeStateDown {
		return fmt.Errorf("node is %s", res.Node.Status.State)
	}
	return nil
}

func allReady(ctx context.Context, c *client.Client, managers int) error {
	res, err := c.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return err
	}
	ready := 0
	if managers == 0 {
		for _, n := range res.Items {
			if n.Status.State != swarm.NodeStateReady {
				return fmt.Errorf("%s is %s", n.Description.Hostname, n.Status.State)
			}
		}
		return nil
	}
	for _, n := range res.Items {
		if n.Status.State == swarm.NodeStateReady && n.ManagerStatus != nil &&
			(n.ManagerStatus.Leader || n.ManagerStatus.Reachability == swarm.ReachabilityReachable) {
			ready++
		}
	}
	if ready < managers {
		return fmt.Errorf("%d of %d managers ready", ready, managers)
	}
	return nil
}

func restart(n sandbox.Node, binary string) (int, error) {
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(binary, "daemon", "--data-dir", n.DataDir, "-H", n.Host, "--hostname", n.Name)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

func poll(ctx context.Context, timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return err
}

// Summary is the median and worst of a set of durations.
func Summary(ds []time.Duration) (median, worst time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}
