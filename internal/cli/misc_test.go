package cli_test

import (
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/internal/cli"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

func TestInfo(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /info", http.StatusOK, managerInfo())
	r := mustRun(t, f.host, "info")
	for _, want := range []string{
		"Client:\n Version: " + cli.Version + "\n Host: " + f.host + "\n\nServer:\n",
		" Name: manager-1\n",
		" Server Version: 0.9.0\n",
		" Swarm: active\n" +
			"  NodeID: " + idM1 + "\n" +
			"  Is Manager: true\n" +
			"  ClusterID: CLUSTER-ID\n" +
			"  Managers: 3\n" +
			"  Nodes: 5\n" +
			"  Fault tolerance: 1 managers may fail (quorum needs 2)\n",
		"  Node Address: 10.0.0.1\n" +
			"  Manager Addresses:\n" +
			"   10.0.0.1:2377\n" +
			"   10.0.0.2:2377\n" +
			"   10.0.0.10:2377\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q; printed:\n%s", want, r.stdout)
		}
	}

	if strings.Contains(r.stdout, "Node Down Removal") {
		t.Errorf("node-down-removal shown while off:\n%s", r.stdout)
	}

	info := managerInfo()
	info.Swarm.Cluster.Spec.Labels = map[string]string{"flotilla.node-down-removal": "30m0s"}
	f.reply("GET /info", http.StatusOK, info)
	if r := mustRun(t, f.host, "info"); !strings.Contains(r.stdout, "  Node Down Removal: 30m0s\n") {
		t.Errorf("node-down-removal on:\n%s", r.stdout)
	}

	info = managerInfo()
	info.Swarm.Managers = 5
	f.reply("GET /info", http.StatusOK, info)
	if r := mustRun(t, f.host, "info"); !strings.Contains(r.stdout, "  Fault tolerance: 2 managers may fail (quorum needs 3)\n") {
		t.Errorf("5 managers:\n%s", r.stdout)
	}

	f.reply("GET /info", http.StatusOK, system.Info{Name: "lonely", Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}})
	r = mustRun(t, f.host, "info")
	if !strings.HasSuffix(r.stdout, " Swarm: inactive\n") || strings.Contains(r.stdout, "NodeID") {
		t.Errorf("inactive info printed:\n%s", r.stdout)
	}

	info = managerInfo()
	info.Swarm.LocalNodeState = swarm.LocalNodeStateError
	info.Swarm.ControlAvailable = false
	info.Swarm.Error = "raft: quorum lost"
	f.reply("GET /info", http.StatusOK, info)
	r = mustRun(t, f.host, "info")
	if !strings.Contains(r.stdout, " Swarm: error\n  NodeID: "+idM1+"\n  Error: raft: quorum lost\n  Is Manager: false\n") {
		t.Errorf("info with a swarm error printed:\n%s", r.stdout)
	}

	r = mustRun(t, f.host, "info", "--format", "{{.Swarm.NodeID}} {{.Swarm.LocalNodeState}}")
	if r.stdout != idM1+" error\n" {
		t.Errorf("info --format printed %q", r.stdout)
	}
}

func TestVersion(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /version", http.StatusOK, system.VersionResponse{
		Platform: system.PlatformInfo{Name: "Flotilla"}, Version: "0.9.0", APIVersion: "1.47", MinAPIVersion: "1.24", Os: "linux", Arch: "amd64",
	})
	r := mustRun(t, f.host, "version")
	want := "Client:\n" +
		" Version:           " + cli.Version + "\n" +
		" API version:       1.47 (downgraded from 1.56)\n" +
		" Go version:        " + runtime.Version() + "\n" +
		" OS/Arch:           " + runtime.GOOS + "/" + runtime.GOARCH + "\n" +
		"\n" +
		"Server: Flotilla\n" +
		" Version:           0.9.0\n" +
		" API version:       1.47 (minimum version 1.24)\n" +
		" OS/Arch:           linux/amd64\n"
	if r.stdout != want {
		t.Errorf("version printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	if r := mustRun(t, "", "--version"); r.stdout != "flotilla version "+cli.Version+"\n" {
		t.Errorf("--version printed %q", r.stdout)
	}
}

func TestConnectionRefusedMessage(t *testing.T) {
	dir := shortTempDir(t)

	// A socket file nobody listens on: connection refused.
	refused := filepath.Join(dir, "refused.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: refused, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()

	for _, sock := range []string{refused, filepath.Join(dir, "missing.sock")} {
		r := run(t, "unix://"+sock, "node", "ls")
		if r.err == nil {
			t.Fatalf("node ls against %s succeeded", sock)
		}
		for _, want := range []string{
			"Cannot connect to the flotilla daemon socket " + sock + " (unix://" + sock + "). Is the daemon running?\n",
			"'flotilla daemon'", "-H/--host", "FLOTILLA_HOST",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", filepath.Base(sock), want, r.stderr)
			}
		}
		if strings.Count(r.stderr, "Cannot connect") != 1 {
			t.Errorf("error printed more than once:\n%s", r.stderr)
		}
	}
}

func TestHostFromEnvironment(t *testing.T) {
	f := newClusterAPI(t)
	t.Setenv("FLOTILLA_HOST", f.host)
	r := runArgs(t, "node", "ls", "-q")
	if r.err != nil || !strings.HasPrefix(r.stdout, idM1+"\n") {
		t.Errorf("FLOTILLA_HOST not used: err=%v stdout=%q stderr=%q", r.err, r.stdout, r.stderr)
	}

	r = run(t, "http://example.com", "node", "ls")
	if r.err == nil || !strings.Contains(r.stderr, `unsupported scheme "http"`) {
		t.Errorf("bad -H: err=%v stderr=%q", r.err, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	r := runArgs(t, "node", "update")
	if r.err == nil || !strings.HasPrefix(r.stderr, "\"flotilla node update\" requires exactly 1 argument.\nSee 'flotilla node update --help'.\n\nUsage:  flotilla node update [OPTIONS] NODE") {
		t.Errorf("missing argument: err=%v stderr=%q", r.err, r.stderr)
	}
	r = runArgs(t, "node", "ls", "--bogus")
	if r.err == nil || r.stderr != "unknown flag: --bogus\nSee 'flotilla node ls --help'.\n" {
		t.Errorf("unknown flag: err=%v stderr=%q", r.err, r.stderr)
	}
	r = runArgs(t, "node", "frobnicate")
	if r.err == nil || !strings.Contains(r.stderr, `unknown command "frobnicate" for "flotilla node"`) {
		t.Errorf("unknown subcommand: err=%v stderr=%q", r.err, r.stderr)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := mustRun(t, "", "completion", shell)
		if !strings.Contains(r.stdout, "flotilla") || len(r.stdout) < 200 {
			t.Errorf("completion %s printed %d bytes", shell, len(r.stdout))
		}
	}
	if r := runArgs(t, "completion", "tcsh"); r.err == nil || !strings.Contains(r.stderr, `unsupported shell "tcsh"`) {
		t.Errorf("completion tcsh: err=%v stderr=%q", r.err, r.stderr)
	}
}
