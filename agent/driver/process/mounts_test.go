//go:build linux

package process_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/process"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func TestMountEnv(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/db": "FLOTILLA_MOUNT_VAR_LIB_DB",
		"/data":       "FLOTILLA_MOUNT_DATA",
		"/a-b//c.d/":  "FLOTILLA_MOUNT_A_B_C_D",
		"/run/x1":     "FLOTILLA_MOUNT_RUN_X1",
	} {
		if got := process.MountEnv(in); got != want {
			t.Errorf("MountEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

// runToEnd runs a shell script to its end and returns its output.
func runToEnd(t *testing.T, d *process.Driver, s driver.Spec) string {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	st, err := d.Wait(ctx, h)
	out := lines(logs(t, d, h, driver.LogOptions{Tail: -1}))
	if err != nil || st.Failed() {
		t.Fatalf("wait: %+v, %v; output:\n%s", st, err, out)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatalf("remove: %v", err)
	}
	return out
}

func TestMounts(t *testing.T) {
	root := t.TempDir()
	vols := filepath.Join(t.TempDir(), "volumes")
	d, err := process.New(process.Options{Root: filepath.Join(root, "tasks"), VolumesDir: vols})
	if err != nil {
		t.Fatal(err)
	}

	// A bind mount is the node's path itself.
	bind := t.TempDir()
	if err := os.WriteFile(filepath.Join(bind, "hello.txt"), []byte("from-the-node"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := sh("bind1", `cat "$FLOTILLA_MOUNT_DATA/hello.txt"; echo " at $FLOTILLA_MOUNT_DATA"`)
	s.Mounts = []driver.Mount{{Type: driver.MountBind, Source: bind, Target: "/data"}}
	if out := runToEnd(t, d, s); !strings.Contains(out, "from-the-node at "+bind) {
		t.Errorf("a task with %s bound at /data said:\n%s", bind, out)
	}

	// A named volume is a directory under the volumes dir, made on first
	// use with its labels, and kept for the next task.
	s = sh("vol1", `echo kept-data > "$FLOTILLA_MOUNT_VAR_LIB_APP/f"`)
	s.Mounts = []driver.Mount{{Type: driver.MountVolume, Source: "appdata", Target: "/var/lib/app", VolumeLabels: map[string]string{"app": "db"}}}
	runToEnd(t, d, s)
	s2 := sh("vol2", `cat "$FLOTILLA_MOUNT_VAR_LIB_APP/f"`)
	s2.Mounts = s.Mounts
	if out := runToEnd(t, d, s2); !strings.Contains(out, "kept-data") {
		t.Errorf("the second task did not read the first one's data:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(vols, "appdata", "_data", "f")); err != nil || string(b) != "kept-data\n" {
		t.Errorf("volume data on the node: %q, %v", b, err)
	}
	var rec struct {
		Name   string
		Labels map[string]string
	}
	if b, err := os.ReadFile(filepath.Join(vols, "appdata", "volume.json")); err != nil || json.Unmarshal(b, &rec) != nil || rec.Labels["app"] != "db" {
		t.Errorf("volume record: %+v, %v", rec, err)
	}

	// An anonymous volume and a tmpfs are the task's own and go with it.
	s = sh("own1", `echo "anon=$FLOTILLA_MOUNT_ANON tmp=$FLOTILLA_MOUNT_SCRATCH"; touch "$FLOTILLA_MOUNT_ANON/x" "$FLOTILLA_MOUNT_SCRATCH/y" && grep " $FLOTILLA_MOUNT_SCRATCH " /proc/mounts || echo "no tmpfs"`)
	s.Mounts = []driver.Mount{{Type: driver.MountVolume, Target: "/anon"}, {Type: driver.MountTmpfs, Target: "/scratch", TmpfsSize: 1 << 20, TmpfsMode: 0o1770}}
	out := runToEnd(t, d, s)
	taskDir := filepath.Join(root, "tasks", "own1")
	if !strings.Contains(out, "anon="+filepath.Join(taskDir, "volumes", "0")) || !strings.Contains(out, "tmp="+filepath.Join(taskDir, "tmpfs", "1")) {
		t.Errorf("the task's own mounts:\n%s", out)
	}
	if os.Geteuid() == 0 && (!strings.Contains(out, "tmpfs") || !strings.Contains(out, "size=1024k") || !strings.Contains(out, "mode=1770")) {
		t.Errorf("as root the tmpfs is a 1M tmpfs of mode 1770:\n%s", out)
	}
	if _, err := os.Stat(taskDir); !os.IsNotExist(err) {
		t.Errorf("the task's directory outlived it: %v", err)
	}

	// What the driver cannot honour is refused, and nothing is left.
	for _, tc := range []struct {
		m    driver.Mount
		want string
	}{
		{driver.Mount{Type: driver.MountBind, Source: filepath.Join(bind, "nope"), Target: "/d"}, `invalid mount config for type "bind": bind source path does not exist: ` + filepath.Join(bind, "nope")},
		{driver.Mount{Type: driver.MountBind, Source: bind, Target: "/d", ReadOnly: true}, "cannot make a mount read-only"},
		{driver.Mount{Type: driver.MountBind, Source: bind, Target: "/d", Propagation: "rshared"}, "no mount propagation"},
		{driver.Mount{Type: driver.MountVolume, Source: "v1", Target: "/d", VolumeDriver: "nfs"}, `volume driver "nfs" is not available`},
		{driver.Mount{Type: driver.MountVolume, Source: "v1", Target: "/d", VolumeOptions: map[string]string{"type": "nfs"}}, "volume options (volume-opt) are not supported"},
		{driver.Mount{Type: driver.MountVolume, Source: "../x", Target: "/d"}, "invalid characters for a local volume name"},
	} {
		s := sh("refused", "true")
		s.Mounts = []driver.Mount{tc.m}
		_, err := d.Start(ctxT(t, 10*time.Second), s)
		if err == nil || !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want an invalid-spec error saying %q", tc.m, err, tc.want)
		}
	}
	s = sh("twice", "true")
	s.Mounts = []driver.Mount{{Type: driver.MountTmpfs, Target: "/a-b"}, {Type: driver.MountTmpfs, Target: "/a_b"}}
	if _, err := d.Start(ctxT(t, 10*time.Second), s); err == nil || !strings.Contains(err.Error(), "FLOTILLA_MOUNT_A_B") {
		t.Errorf("two targets with one variable: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tasks")); len(ents) != 0 {
		t.Errorf("refused tasks left %v", ents)
	}
	noVols, _ := process.New(process.Options{Root: t.TempDir()})
	s = sh("novols", "true")
	s.Mounts = []driver.Mount{{Type: driver.MountVolume, Source: "v1", Target: "/d"}}
	if _, err := noVols.Start(ctxT(t, 10*time.Second), s); err == nil || !strings.Contains(err.Error(), "no volumes directory") {
		t.Errorf("a named volume on a driver without a volumes dir: %v", err)
	}
}
