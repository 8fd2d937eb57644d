package cli_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/flotilla-org/flotilla/internal/sandbox"
	"github.com/flotilla-org/flotilla/internal/sandbox/sandboxtest"
)

func TestSandboxUpDownCLI(t *testing.T) {
	sandboxtest.UseFakeDaemons(t)
	dir := filepath.Join(shortTempDir(t), "sb")

	r := runArgs(t, "sandbox", "up", "--dir", dir, "--timeout", "30s", "--sample-service=false")
	if r.err != nil {
		t.Fatalf("sandbox up: %v\nstdout:\n%s\nstderr:\n%s", r.err, r.stdout, r.stderr)
	}
	t.Cleanup(func() { _ = sandbox.Down(dir) })

	sb, err := sandbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ports := map[int]bool{}
	publish := map[string]bool{}
	for _, n := range sb.Nodes {
		names = append(names, n.Name)
		if n.PID <= 0 || syscall.Kill(n.PID, 0) != nil {
			t.Errorf("%s: pid %d not running", n.Name, n.PID)
		}
		if ports[n.SwarmPort] || n.SwarmAddr != "127.0.0.1:"+strconv.Itoa(n.SwarmPort) {
			t.Errorf("%s: cluster address %s (port %d) reused or malformed", n.Name, n.SwarmAddr, n.SwarmPort)
		}
		ports[n.SwarmPort] = true
		if n.NodeID != "id-"+n.Name {
			t.Errorf("%s: node ID %q not recorded", n.Name, n.NodeID)
		}
		args := sandboxtest.ReadJSON[[]string](t, filepath.Join(n.DataDir, "args.json"))
		want := []string{"--data-dir", filepath.Join(dir, n.Name), "-H", "unix://" + filepath.Join(dir, n.Name, "api.sock"), "--hostname", n.Name, "--publish-addr", n.PublishHost}
		if publish[n.PublishHost] || !strings.HasPrefix(n.PublishHost, "127.") {
			t.Errorf("%s: publish address %q reused or not loopback", n.Name, n.PublishHost)
		}
		publish[n.PublishHost] = true
		if !slices.Equal(args, want) {
			t.Errorf("%s started with %q, want %q", n.Name, args, want)
		}
	}
	if want := []string{"manager-1", "manager-2", "manager-3", "worker-1", "worker-2"}; !slices.Equal(names, want) {
		t.Fatalf("nodes = %v, want %v", names, want)
	}
	host := "unix://" + filepath.Join(dir, "manager-1", "api.sock")
	if sb.Host() != host {
		t.Errorf("Host() = %q, want %q", sb.Host(), host)
	}

	// Joins went through the API with every manager joined so far.
	m := sb.Managers()
	for _, tc := range []struct {
		name    string
		remotes []string
		token   string
	}{
		{"manager-2", []string{m[0].SwarmAddr}, "SWMTKN-1-m-"},
		{"manager-3", []string{m[0].SwarmAddr, m[1].SwarmAddr}, "SWMTKN-1-m-"},
		{"worker-1", []string{m[0].SwarmAddr, m[1].SwarmAddr, m[2].SwarmAddr}, "SWMTKN-1-w-"},
		{"worker-2", []string{m[0].SwarmAddr, m[1].SwarmAddr, m[2].SwarmAddr}, "SWMTKN-1-w-"},
	} {
		n, _ := sb.Node(tc.name)
		j := sandboxtest.ReadJSON[sandboxtest.Join](t, filepath.Join(n.DataDir, "join.json"))
		if !slices.Equal(j.Request.RemoteAddrs, tc.remotes) {
			t.Errorf("%s joined with RemoteAddrs %v, want %v", tc.name, j.Request.RemoteAddrs, tc.remotes)
		}
		if !strings.HasPrefix(j.Request.JoinToken, tc.token) {
			t.Errorf("%s joined with token %q", tc.name, j.Request.JoinToken)
		}
		if j.Request.ListenAddr != n.SwarmAddr || j.Request.AdvertiseAddr != n.SwarmAddr {
			t.Errorf("%s: listen %q advertise %q, want %q", tc.name, j.Request.ListenAddr, j.Request.AdvertiseAddr, n.SwarmAddr)
		}
	}

	for _, want := range []string{
		"Sandbox is up: 3 managers and 2 workers.",
		"    export FLOTILLA_HOST=" + host + "\n    flotilla node ls\n",
		"    export DOCKER_HOST=" + host + "\n",
		"id-manager-1 *   manager-1",
		"Stop it with: flotilla sandbox down --dir " + dir + "\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("sandbox up output lacks %q:\n%s", want, r.stdout)
		}
	}

	// The CLI pointed at it sees the cluster.
	ls := mustRun(t, host, "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}")
	if want := "manager-1 Leader\nmanager-2 Reachable\nmanager-3 Reachable\nworker-1 \nworker-2 \n"; ls.stdout != want {
		t.Errorf("node ls on the sandbox printed %q, want %q", ls.stdout, want)
	}

	st := mustRun(t, "", "sandbox", "status", "--dir", dir)
	if strings.Count(st.stdout, "running") != 5 {
		t.Errorf("sandbox status:\n%s", st.stdout)
	}

	// A second up on the same directory refuses.
	again := runArgs(t, "sandbox", "up", "--dir", dir, "--sample-service=false")
	if again.err == nil || !strings.Contains(again.stderr, "a sandbox is already running in "+dir) {
		t.Errorf("second sandbox up: err=%v stderr=%q", again.err, again.stderr)
	}
	if _, err := sandbox.Up(t.Context(), sandbox.Options{Dir: dir, Managers: 1, Binary: sandboxtest.Binary(t)}); !errors.Is(err, sandbox.ErrRunning) {
		t.Errorf("sandbox.Up on a running sandbox: %v", err)
	}

	down := mustRun(t, "", "sandbox", "down", "--dir", dir)
	if !strings.HasPrefix(down.stdout, "Stopping manager-1 (pid ") || !strings.HasSuffix(down.stdout, "\nSandbox in "+dir+" stopped and removed.\n") {
		t.Errorf("sandbox down printed %q", down.stdout)
	}
	for _, n := range sb.Nodes {
		sandboxtest.WaitGone(t, n.Name, n.PID)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists after down: %v", dir, err)
	}

	down = mustRun(t, "", "sandbox", "down", "--dir", dir)
	if down.stdout != "No sandbox in "+dir+"; nothing to do.\n" {
		t.Errorf("second sandbox down printed %q", down.stdout)
	}
}
