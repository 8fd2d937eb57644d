//go:build unix

package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Tasks outlive their daemon on purpose (a restarted node re-attaches to
// them), so stopping a sandbox's daemons is not enough: its services are
// removed first, while the managers still run, and any task process left
// under the sandbox's data dirs is stopped after.

// removeServices removes every service and waits (briefly) for the
// sandbox's nodes to stop their tasks; errors only mean the cleanup below
// does more. Tasks on nodes the sandbox did not start (bench converge's
// simulated nodes, gone by now) are not waited for: nothing would stop
// them.
func removeServices(sb *Cluster, out io.Writer) {
	if len(sb.Nodes) == 0 {
		return
	}
	api, err := newAPIClient(sb.Host())
	if err != nil {
		return
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := api.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil || len(res.Items) == 0 {
		return
	}
	fmt.Fprintf(out, "Removing %d %s\n", len(res.Items), plural(len(res.Items), "service"))
	for _, s := range res.Items {
		_, _ = api.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{})
	}
	own := ownNodes(ctx, api, sb)
	for ctx.Err() == nil {
		tasks, err := api.TaskList(ctx, client.TaskListOptions{})
		if err != nil || !anyOn(tasks.Items, own) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopTaskProcesses ends process-driver tasks whose task directory lies in
// dir (their supervisor, the process-shim, takes its program with it).
func stopTaskProcesses(dir string) {
	pids := taskProcesses(dir)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(taskProcesses(dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range taskProcesses(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func taskProcesses(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		args, ok := processArgs(pid)
		if !ok || len(args) < 2 || args[1] != "process-shim" {
			continue
		}
		for i, a := range args {
			if a == "--dir" && i+1 < len(args) && strings.HasPrefix(args[i+1], prefix) {
				out = append(out, pid)
			}
		}
	}
	return out
}

// ownNodes returns the IDs of the swarm nodes the sandbox's daemons are
// (by their hostnames, which the sandbox sets).
func ownNodes(ctx context.Context, api *client.Client, sb *Cluster) map[string]bool {
	names := map[string]bool{}
	for _, n := range sb.Nodes {
		names[n.Name] = true
	}
	own := map[string]bool{}
	res, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil // unknown: wait for every task
	}
	for _, n := range res.Items {
		if names[n.Description.Hostname] {
			own[n.ID] = true
		}
	}
	return own
}

// anyOn tells whether a task is left on one of the nodes in own (any
// task, when own is nil).
func anyOn(tasks []swarm.Task, own map[string]bool) bool {
	for _, t := range tasks {
		if own == nil || own[t.NodeID] {
			return true
		}
	}
	return false
}
