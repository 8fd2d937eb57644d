package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestDockerMounts runs a docker-driver service, made with the docker
// CLI's --mount (flotilla's CLI when there is no docker CLI), constrained
// to one node, with a named volume and a bind-mounted file: the task
// reads the file and writes to the volume; after `service update --force`
// the new task, on the same node, finds what the old one wrote. A bind of
// a path missing on the node fails the task with the engine's words in
// `service ps`. Everything the test made on the engine (containers, the
// volume, the image) is removed at the end.
func TestDockerMounts(t *testing.T) {
	requireE2E(t)
	api := engineOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	runID := randHex(6)
	image := "flotilla-e2e/app:" + runID
	const runLabel = "com.flotilla.e2e"
	vol := "flotilla-e2e-" + runID
	buildE2EImage(ctx, t, api, image)
	// Cleanups run last-registered first: the daemons go, then their
	// containers, then the volume and the image.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		vols, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("label", runLabel+"="+runID)})
		if err != nil {
			t.Errorf("listing volumes: %v", err)
		}
		for _, v := range vols.Items {
			if _, err := api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				t.Errorf("removing volume %s: %v", v.Name, err)
			}
		}
		if _, err := api.ImageRemove(ctx, image, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("removing image %s: %v", image, err)
		}
	})
	removeContainersAtEnd(t, api, client.Filters{}.Add("label", "com.flotilla.managed=true", runLabel+"="+runID))

	bindDir := tempDir(t)
	if err := os.WriteFile(filepath.Join(bindDir, "bound.txt"), []byte("bound-"+runID), 0o644); err != nil {
		t.Fatal(err)
	}

	c := newCluster(t, 1, 1) // no --no-docker: the nodes offer the docker driver
	m1, w1 := c.managers[0], c.workers[0]
	args := []string{"service", "create", "--name", "vsvc", "--detach",
		"--container-label", "com.flotilla.driver=docker", "--container-label", runLabel + "=" + runID,
		"--constraint", "node.id==" + w1.id, "--update-monitor", "1s",
		"--mount", "type=volume,source=" + vol + ",target=/data,volume-label=" + runLabel + "=" + runID,
		"--mount", "type=bind,src=" + bindDir + ",dst=/cfg,readonly",
		"-e", "E2E_READ=/cfg/bound.txt", "-e", "E2E_APPEND=/data/log",
		image}
	if dockerBin, err := exec.LookPath("docker"); err == nil {
		env := cleanEnv([]string{"DOCKER_HOST=" + m1.host(), "DOCKER_CONFIG=" + tempDir(t)})
		// A bad mount is refused by the managers, with dockerd's words,
		// and nothing is created.
		bad := []string{"service", "create", "--name", "refused", "--detach", "--mount", "type=bind,source=tmp,target=/data", image}
		if r := run(cliTimeout, env, dockerBin, bad...); r.err == nil || !strings.Contains(r.stderr, "invalid bind mount source, must be an absolute path: tmp") {
			t.Errorf("docker service create with a relative bind source: err %v, stderr %q", r.err, r.stderr)
		}
		if r := run(cliTimeout, env, dockerBin, "service", "ls", "-q"); r.err != nil || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("a refused create left services: %q, %v", r.stdout, r.err)
		}
		if r := run(cliTimeout, env, dockerBin, args...); r.err != nil {
			t.Fatalf("docker service create --mount: %v\nstdout: %s", r.err, r.stdout)
		}
	} else {
		t.Log("no docker CLI on PATH: creating with flotilla's")
		m1.mustService(t, args...)
	}

	var first psRow
	eventually(t, convergeTimeout, func() error {
		rows, err := m1.runningTasks("vsvc", 1, func(n string) bool { return n == w1.name })
		if err != nil {
			return err
		}
		first = rows[0]
		return nil
	})
	// logs waits for a line of the service's logs that ends with want.
	logs := func(want string) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			out, _, err := m1.CLI("service", "logs", "vsvc")
			if err != nil {
				return err
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.HasSuffix(strings.TrimSpace(l), want) {
					return nil
				}
			}
			return fmt.Errorf("service logs vsvc has no line ending with %q:\n%s", want, out)
		})
	}
	logs("read /cfg/bound.txt: bound-" + runID)
	logs("data in /data/log:") // the volume is new

	m1.mustService(t, "service", "update", "--force", "vsvc")
	eventually(t, convergeTimeout, func() error {
		rows, err := m1.runningTasks("vsvc", 1, func(n string) bool { return n == w1.name })
		if err != nil {
			return err
		}
		if strings.HasPrefix(first.ID, rows[0].ID) || strings.HasPrefix(rows[0].ID, first.ID) {
			return fmt.Errorf("task %v still runs after update --force", rows[0])
		}
		return nil
	})
	// The new task found what the old one wrote: "task <old task's ID>".
	eventually(t, 20*time.Second, func() error {
		out, _, err := m1.CLI("service", "logs", "vsvc")
		if err != nil {
			return err
		}
		for _, l := range strings.Split(out, "\n") {
			if i := strings.Index(l, "data in /data/log: task "); i >= 0 && strings.HasPrefix(l[i+len("data in /data/log: task "):], first.ID) {
				return nil
			}
		}
		return fmt.Errorf("no task read the data task %s left in volume %s:\n%s", first.ID, vol, out)
	})
	if _, err := api.VolumeInspect(ctx, vol, client.VolumeInspectOptions{}); err != nil {
		t.Errorf("volume %s on the engine: %v", vol, err)
	}

	// A bind of a path missing on the node: the task fails, and says why.
	missing := filepath.Join(bindDir, "no-such-dir")
	m1.mustService(t, "service", "create", "--name", "vmiss", "--detach", "--driver", "docker",
		"--container-label", runLabel+"="+runID, "--restart-condition", "none",
		"--mount", "type=bind,source="+missing+",target=/data", image)
	eventually(t, convergeTimeout, func() error {
		out, _, err := m1.CLI("service", "ps", "--no-trunc", "vmiss")
		if err != nil {
			return err
		}
		if !strings.Contains(out, `invalid mount config for type "bind": bind source path does not exist: `+missing) {
			return fmt.Errorf("service ps vmiss does not show the missing bind source:\n%s", out)
		}
		return nil
	})
	m1.mustService(t, "service", "rm", "vsvc", "vmiss")
}

// TestProcessMounts is TestDockerMounts on the process driver: the task
// is told its mounts' node paths (FLOTILLA_MOUNT_<TARGET>); its named
// volume is a directory under the node's data dir that outlives the task.
func TestProcessMounts(t *testing.T) {
	requireE2E(t)
	bindDir := tempDir(t)
	if err := os.WriteFile(filepath.Join(bindDir, "bound.txt"), []byte("bound-file"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newClusterArgs(t, 1, 1, "--no-docker")
	m1, w1 := c.managers[0], c.workers[0]
	m1.mustService(t, "service", "create", "--name", "psvc", "--driver", "process", "--constraint", "node.id=="+w1.id,
		"--update-monitor", "1s", "--mount", "source=pdata,target=/data", "--mount", "type=bind,src="+bindDir+",dst=/cfg",
		"/bin/sh", "-c", `echo "read: $(cat "$FLOTILLA_MOUNT_CFG/bound.txt")"; echo "data: $(cat "$FLOTILLA_MOUNT_DATA/log" 2>/dev/null)"; `+
			`echo "task $FLOTILLA_TASK_ID" >> "$FLOTILLA_MOUNT_DATA/log"; exec sleep 1000`)
	rows, err := m1.runningTasks("psvc", 1, func(n string) bool { return n == w1.name })
	if err != nil {
		t.Fatal(err)
	}
	first := rows[0]
	logLine := func(want string) {
		t.Helper()
		eventually(t, 20*time.Second, func() error {
			out, _, err := m1.CLI("service", "logs", "psvc")
			if err != nil {
				return err
			}
			if !strings.Contains(out, want) {
				return fmt.Errorf("service logs psvc does not say %q:\n%s", want, out)
			}
			return nil
		})
	}
	logLine("read: bound-file")
	data := filepath.Join(w1.dataDir, "volumes", "pdata", "_data", "log")
	eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(data)
		if err != nil || !strings.HasPrefix(string(b), "task "+first.ID) {
			return fmt.Errorf("volume data on %s: %q, %v; want the first task's line", w1, b, err)
		}
		return nil
	})
	m1.mustService(t, "service", "update", "--force", "psvc")
	logLine("data: task " + first.ID)
	m1.mustService(t, "service", "rm", "psvc")
	if _, err := os.Stat(data); err != nil {
		t.Errorf("the named volume went with its service: %v", err)
	}
}
