package docker_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/docker"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// runToEnd starts a task that exits at once and returns its output.
func runToEnd(t *testing.T, d *docker.Driver, s driver.Spec) string {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if st, err := d.Wait(ctx, h); err != nil || st.Failed() {
		t.Fatalf("wait: %+v, %v", st, err)
	}
	out := text(collect(t, d, h, driver.LogOptions{Tail: -1}))
	if err := d.Remove(ctx, h); err != nil {
		t.Fatalf("remove: %v", err)
	}
	return out
}

// removeTestVolumes removes this test's containers, then the volumes
// they made (named volumes outlive their containers), at the end.
func removeTestVolumes(t *testing.T, d *docker.Driver) {
	value := runID + "-" + t.Name()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := client.Filters{}.Add("label", docker.LabelManaged+"=true", testLabel+"="+value)
		res, _ := d.Client().ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		for _, c := range res.Items {
			_, _ = d.Client().ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
		vols, err := d.Client().VolumeList(ctx, client.VolumeListOptions{Filters: f})
		if err != nil {
			t.Errorf("cleanup: list volumes: %v", err)
		}
		for _, v := range vols.Items {
			if _, err := d.Client().VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: remove volume %s: %v", v.Name, err)
			}
		}
	})
}

func TestMounts(t *testing.T) {
	d := newDriver(t)
	removeTestVolumes(t, d)
	ctx := ctxT(t, 2*time.Minute)

	// A bind mount shows the node's directory, read-only when asked.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("from-the-node"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := spec(t, "EXIT_CODE=0", "READ=/data/hello.txt", "WRITE=/data/new=x")
	s.Mounts = []driver.Mount{{Type: driver.MountBind, Source: dir, Target: "/data", ReadOnly: true}}
	out := runToEnd(t, d, s)
	if !strings.Contains(out, "read /data/hello.txt: from-the-node") || !strings.Contains(out, "write /data/new failed") {
		t.Errorf("a task with %s bound read-only at /data said:\n%s", dir, out)
	}

	// A named volume is made on first use, labelled, and keeps its data
	// for the next task.
	vol := "flotilla-test-" + runID + "-data"
	s = spec(t, "EXIT_CODE=0", "WRITE=/var/lib/app/f=kept-data")
	s.Mounts = []driver.Mount{{Type: driver.MountVolume, Source: vol, Target: "/var/lib/app", VolumeLabels: map[string]string{"app": "db"}}}
	if out := runToEnd(t, d, s); !strings.Contains(out, "wrote /var/lib/app/f") {
		t.Fatalf("the first task did not write to its volume:\n%s", out)
	}
	s2 := spec(t, "EXIT_CODE=0", "READ=/var/lib/app/f")
	s2.Mounts = s.Mounts
	if out := runToEnd(t, d, s2); !strings.Contains(out, "read /var/lib/app/f: kept-data") {
		t.Errorf("the second task did not read the first one's data from volume %s:\n%s", vol, out)
	}
	vi, err := d.Client().VolumeInspect(ctx, vol, client.VolumeInspectOptions{})
	if err != nil {
		t.Fatalf("the named volume is gone after its tasks: %v", err)
	}
	if l := vi.Volume.Labels; l[docker.LabelManaged] != "true" || l["app"] != "db" || l[testLabel] == "" || vi.Volume.Driver != "local" {
		t.Errorf("volume %s: driver %q labels %v; want local, %s=true, app=db and the driver's labels", vol, vi.Volume.Driver, l, docker.LabelManaged)
	}

	// A volume's driver options reach the engine's local driver: this
	// one is a tmpfs.
	optVol := vol + "-opts"
	s = spec(t, "EXIT_CODE=0", "MOUNT=/v")
	s.Mounts = []driver.Mount{{Type: driver.MountVolume, Source: optVol, Target: "/v", VolumeDriver: "local",
		VolumeOptions: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=2m"}}}
	if out := runToEnd(t, d, s); !strings.Contains(out, "mount /v: tmpfs ") || !strings.Contains(out, "size=2048k") {
		t.Errorf("a task on a local volume with options type=tmpfs,o=size=2m said:\n%s", out)
	}

	// A tmpfs has the size and mode asked for.
	s = spec(t, "EXIT_CODE=0", "MOUNT=/scratch")
	s.Mounts = []driver.Mount{{Type: driver.MountTmpfs, Target: "/scratch", TmpfsSize: 1 << 20, TmpfsMode: 0o1770}}
	if out := runToEnd(t, d, s); !strings.Contains(out, "mount /scratch: tmpfs ") || !strings.Contains(out, "size=1024k") || !strings.Contains(out, "mode=1770") {
		t.Errorf("a task with a 1M tmpfs of mode 1770 at /scratch said:\n%s", out)
	}

	// An anonymous volume goes with its task's container.
	s = spec(t)
	s.Mounts = []driver.Mount{{Type: driver.MountVolume, Target: "/anon"}}
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := d.Client().ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{})
	if err != nil || len(ins.Container.Mounts) != 1 || ins.Container.Mounts[0].Name == "" {
		t.Fatalf("inspect the task with an anonymous volume: %+v, %v", ins.Container.Mounts, err)
	}
	anon := ins.Container.Mounts[0].Name
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client().VolumeInspect(ctx, anon, client.VolumeInspectOptions{}); err == nil {
		t.Errorf("anonymous volume %s outlived its task", anon)
	}

	// A bind of a path missing on the node fails the task with the
	// engine's words, as swarm mode does; no container is left.
	missing := filepath.Join(dir, "no-such-dir")
	s = spec(t)
	s.Mounts = []driver.Mount{{Type: driver.MountBind, Source: missing, Target: "/data"}}
	_, err = d.Start(ctx, s)
	if err == nil || !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), `invalid mount config for type "bind": bind source path does not exist: `+missing) {
		t.Errorf("a bind of a missing path: %v; want an invalid-spec error saying the bind source path does not exist", err)
	}
	res, _ := d.Client().ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("name", s.TaskName())})
	if len(res.Items) != 0 {
		t.Errorf("a failed start left container %v", res.Items[0].Names)
	}
}
