//go:build linux

package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

func withFiles(tk swarm.Task) nodeapi.Assignment {
	tk.Spec.ContainerSpec.Secrets = []*swarm.SecretReference{{SecretID: "sid", SecretName: "pw",
		File: &swarm.SecretReferenceFileTarget{Name: "pw", UID: "0", GID: "0", Mode: 0o444}}}
	tk.Spec.ContainerSpec.Configs = []*swarm.ConfigReference{{ConfigID: "cid", ConfigName: "app.conf",
		File: &swarm.ConfigReferenceFileTarget{Name: "/etc/app/app.conf", UID: "0", GID: "0", Mode: 0o440}}}
	return nodeapi.Assignment{Task: tk, ServiceName: "web", Files: []nodeapi.TaskFile{
		{Kind: nodeapi.FileSecret, ID: "sid", Data: []byte("s3cret-in-memory")},
		{Kind: nodeapi.FileConfig, ID: "cid", Data: []byte("listen 80")},
	}}
}

func TestTaskFilesInMemoryMountedAndRemoved(t *testing.T) {
	if !isTmpfs(shmDir) {
		t.Skip("no tmpfs at /dev/shm")
	}
	db := filepath.Join(t.TempDir(), "tasks.json")
	node := fmt.Sprintf("node-files-%d", time.Now().UnixNano())
	drv := fake.New()
	h, err := startExec(t, drv, db, func(e *Executor) { e.NodeID = node })
	if err != nil {
		t.Fatal(err)
	}
	a := withFiles(mkTask("t1", 1, swarm.TaskStateRunning))
	h.e.Sync([]nodeapi.Assignment{a})
	h.waitState("t1", swarm.TaskStateRunning)
	spec, _ := drv.Spec("t1")
	if len(spec.Files) != 2 || spec.Files[0].Target != "/run/secrets/pw" || spec.Files[1].Target != "/etc/app/app.conf" {
		t.Fatalf("files given to the driver: %+v", spec.Files)
	}
	base := filepath.Join(shmDir, "flotilla", node)
	t.Cleanup(func() { os.RemoveAll(base) })
	for i, want := range []struct {
		data string
		mode os.FileMode
	}{{"s3cret-in-memory", 0o444}, {"listen 80", 0o440}} {
		src := spec.Files[i].Source
		if !strings.HasPrefix(src, base+"/t1/") {
			t.Errorf("file %s is not in the task's memory-backed directory %s", src, base)
		}
		b, err := os.ReadFile(src)
		st, _ := os.Stat(src)
		if err != nil || string(b) != want.data || st.Mode().Perm() != want.mode {
			t.Errorf("%s: %q %v mode %v; want %q mode %v", src, b, err, st.Mode().Perm(), want.data, want.mode)
		}
	}
	if b, _ := os.ReadFile(db); strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "czNjcmV0") {
		t.Errorf("the local task record holds the secret:\n%s", b)
	}
	h.e.Sync(nil) // dropped: its files go
	eventually(t, "the dropped task's files to go", func() bool {
		_, err := os.Stat(filepath.Join(base, "t1"))
		return os.IsNotExist(err)
	})
}

func TestProcessTaskGetsItsFilesDirs(t *testing.T) {
	if !isTmpfs(shmDir) {
		t.Skip("no tmpfs at /dev/shm")
	}
	node := fmt.Sprintf("node-files-%d", time.Now().UnixNano())
	drv := fake.New()
	h, err := startExec(t, drv, "", func(e *Executor) { e.NodeID = node; e.Drivers["process"] = drv })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(shmDir, "flotilla", node)) })
	a := withFiles(mkTask("t2", 1, swarm.TaskStateRunning))
	a.Task.Spec.ContainerSpec.Labels = map[string]string{LabelDriver: "process"}
	h.e.Sync([]nodeapi.Assignment{a})
	h.waitState("t2", swarm.TaskStateRunning)
	spec, _ := drv.Spec("t2")
	env := map[string]string{}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	sec, cfg := env[EnvSecretsDir], env[EnvConfigsDir]
	if len(spec.Files) != 0 || sec == "" || cfg == "" {
		t.Fatalf("process task: files %+v, env %v", spec.Files, spec.Env)
	}
	for p, want := range map[string]string{filepath.Join(sec, "pw"): "s3cret-in-memory", filepath.Join(cfg, "etc/app/app.conf"): "listen 80"} {
		b, err := os.ReadFile(p)
		st, _ := os.Stat(p)
		if err != nil || string(b) != want || st.Mode().Perm() != 0o400 {
			t.Errorf("%s: %q %v, mode %v; want %q 0400", p, b, err, st.Mode().Perm(), want)
		}
	}
}

func TestTaskWithoutItsFilesIsRejected(t *testing.T) {
	drv := fake.New()
	h := newExec(t, drv, "")
	a := withFiles(mkTask("t3", 1, swarm.TaskStateRunning))
	a.Files = a.Files[1:] // the secret is gone from the swarm
	h.e.Sync([]nodeapi.Assignment{a})
	eventually(t, "the task without its files to be rejected", func() bool {
		h.drain()
		return h.last("t3").State == swarm.TaskStateRejected
	})
	if st := h.last("t3"); !strings.Contains(st.Err, "secret pw (sid) was not sent with the task") {
		t.Errorf("rejection: %q", st.Err)
	}
}
