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

	"github.com/moby/moby/client"
)

// Tasks outlive their daemon on purpose (a restarted node re-attaches to
// them), so stopping a sandbox's daemons is not enough: its services are
// removed first, while the managers still run, and any task process left
// under the sandbox's data dirs is stopped after.

// removeServices removes every service and waits (briefly) for the
// nodes to stop their tasks; errors only mean the cleanup below does more.
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
	for ctx.Err() == nil {
		tasks, err := api.TaskList(ctx, client.TaskListOptions{})
		if err != nil || len(tasks.Items) == 0 {
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
