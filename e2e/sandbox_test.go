package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/netrules"
)

// TestSandbox runs `flotilla sandbox up`, uses the cluster it prints and
// the sample stack it deploys from examples/sample/compose.yml, and
// checks that `sandbox down` removes everything and leaves no process.
func TestSandbox(t *testing.T) {
	requireE2E(t)
	dir := filepath.Join(tempDir(t), "sb")
	env := cleanEnv(nil)
	var pids []int
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "*", "daemon.log"))
			for _, l := range logs {
				t.Logf("----- last %d lines of %s -----\n%s", logTailLines, l, tail(l, logTailLines))
			}
		}
		for _, pid := range pids {
			if sandboxProcessAlive(pid, dir) {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
		for _, p := range processesMentioning(dir) { // e.g. daemons of a half-made sandbox
			pid, _, _ := strings.Cut(p, ":")
			if n, err := strconv.Atoi(pid); err == nil {
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
		}
	})

	// --keep-on-failure keeps the daemons' logs for the cleanup above to
	// show; it changes nothing when up succeeds.
	r := run(2*time.Minute, env, flotillaBin, "sandbox", "up", "--managers", "3", "--workers", "2", "--dir", dir, "--keep-on-failure")
	// Whatever happened, learn which daemons it started.
	var state struct {
		Nodes []struct {
			Name        string `json:"name"`
			PID         int    `json:"pid"`
			PublishHost string `json:"publish_host"`
			NodeID      string `json:"node_id"`
		} `json:"nodes"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sandbox.json")); err == nil {
		if err := json.Unmarshal(b, &state); err != nil {
			t.Errorf("sandbox.json: %v", err)
		}
		for _, n := range state.Nodes {
			pids = append(pids, n.PID)
		}
	}
	if r.err != nil {
		t.Fatalf("sandbox up: %v\n%s", r.err, r.stdout)
	}
	if len(state.Nodes) != 5 {
		t.Errorf("sandbox.json records %d nodes, want 5", len(state.Nodes))
	}
	if host := "unix://" + filepath.Join(dir, "manager-1", "api.sock"); !strings.Contains(r.stdout, host) {
		t.Errorf("sandbox up does not tell how to point the CLI at %s:\n%s", host, r.stdout)
	}

	host := "unix://" + filepath.Join(dir, "manager-1", "api.sock")
	ls := run(cliTimeout, env, flotillaBin, "-H", host, "node", "ls")
	if ls.err != nil {
		t.Fatal(ls.err)
	}
	lines := strings.Split(strings.TrimRight(ls.stdout, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("node ls on the sandbox printed %d lines, want a header and 5 nodes:\n%s", len(lines), ls.stdout)
	}
	leaders, reachable := 0, 0
	for _, l := range lines[1:] {
		if !strings.Contains(l, " Ready ") {
			t.Errorf("sandbox node not Ready: %q", l)
		}
		switch {
		case strings.Contains(l, " Leader "):
			leaders++
		case strings.Contains(l, " Reachable "):
			reachable++
		}
	}
	if leaders != 1 || reachable != 2 {
		t.Errorf("sandbox: %d Leader, %d Reachable, want 1 and 2:\n%s", leaders, reachable, ls.stdout)
	}
	for _, name := range []string{"manager-1", "manager-2", "manager-3", "worker-1", "worker-2"} {
		if !strings.Contains(ls.stdout, " "+name+" ") {
			t.Errorf("sandbox: node ls does not list %s:\n%s", name, ls.stdout)
		}
	}

	// The sample is a stack: both CLIs' stack commands list it.
	stacks := run(cliTimeout, env, flotillaBin, "-H", host, "stack", "ls")
	if stacks.err != nil || !regexp.MustCompile(`(?m)^sample\s+2$`).MatchString(stacks.stdout) {
		t.Errorf("stack ls does not list the sample stack with 2 services: %v\n%s", stacks.err, stacks.stdout)
	}
	t.Logf("stack ls:\n%s", stacks.stdout)
	services := run(cliTimeout, env, flotillaBin, "-H", host, "stack", "services", "sample")
	if services.err != nil || !strings.Contains(services.stdout, "sample_web ") || !strings.Contains(services.stdout, "sample_api ") {
		t.Errorf("stack services sample does not list sample_web and sample_api: %v\n%s", services.err, services.stdout)
	}

	// The sample's front end is published on port 8080 of every node,
	// and each node's answers come from the tasks on all of them; each
	// page shows the config the front end was given and the page of the
	// back end's task it reached by name (api:80), which says that it
	// has the secret without showing it.
	const configText = `config /etc/sample/motd.txt: This text is the config "motd" of the sample stack`
	const secretValue = "sample-api-token-not-a-real-credential" // examples/sample/api_token.txt
	for _, n := range state.Nodes {
		eventually(t, convergeTimeout, func() error {
			seen, backs, last := map[string]bool{}, map[string]bool{}, ""
			for range 10 {
				body, err := httpGet("http://" + net.JoinHostPort(n.PublishHost, "8080") + "/")
				if err != nil {
					return err
				}
				if !strings.HasPrefix(body, "hello from sample_web.") {
					return fmt.Errorf("%s answered %q", n.Name, body)
				}
				seen[strings.Fields(body)[2]] = true
				_, back, _ := strings.Cut(body, "api:80, asked by name: ")
				if !strings.HasPrefix(back, "hello from sample_api.") {
					return fmt.Errorf("%s's page does not show the api service reached by name: %q", n.Name, body)
				}
				backs[strings.Fields(back)[2]] = true
				if !strings.Contains(body, configText) {
					return fmt.Errorf("%s's page does not show the config's text: %q", n.Name, body)
				}
				if !strings.Contains(back, "secret api_token: received, ") {
					return fmt.Errorf("%s's page does not show that api has the secret: %q", n.Name, body)
				}
				if strings.Contains(body, secretValue) {
					t.Fatalf("%s's page shows the secret's value: %q", n.Name, body)
				}
				last = body
			}
			if len(seen) < 2 || len(backs) < 2 {
				return fmt.Errorf("10 requests to %s reached only %v, and through them api tasks %v", n.Name, seen, backs)
			}
			t.Logf("%s answers from %d web tasks, through them %d api tasks, e.g.:\n%s", n.Name, len(seen), len(backs), last)
			return nil
		})
	}

	down := run(time.Minute, env, flotillaBin, "sandbox", "down", "--dir", dir)
	if down.err != nil {
		t.Fatalf("sandbox down: %v\n%s", down.err, down.stdout)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		entries, _ := os.ReadDir(dir)
		t.Errorf("sandbox down left %s in place (%v): %v", dir, err, entries)
	}
	for _, n := range state.Nodes {
		if sandboxProcessAlive(n.PID, dir) {
			t.Errorf("sandbox down left %s (pid %d) running", n.Name, n.PID)
		}
	}
	if left := processesMentioning(dir); len(left) > 0 {
		t.Errorf("processes still running with %s on their command line: %v", dir, left)
	}
	// The sandbox's own nodes' chains only: other clusters on the machine
	// come and go meanwhile.
	ours := func(c string) bool {
		for _, n := range state.Nodes {
			if n.NodeID != "" && strings.HasPrefix(c, netrules.NodeChain(n.NodeID)) {
				return true
			}
		}
		return false
	}
	if left := slices.DeleteFunc(captureChains(), func(c string) bool { return !ours(c) }); len(left) > 0 {
		t.Errorf("sandbox down left capture rules: %v", left)
	}
	for _, n := range state.Nodes {
		if _, err := os.Stat(filepath.Join("/dev/shm/flotilla", n.NodeID)); n.NodeID != "" && err == nil {
			t.Errorf("sandbox down left %s's secret and config files in /dev/shm/flotilla/%s", n.Name, n.NodeID)
		}
	}
}

// captureChains lists the nodes' nat chains on this machine (none where
// the test cannot read them).
func captureChains() []string {
	bin, err := netrules.Detect()
	if err != nil || os.Geteuid() != 0 {
		return nil
	}
	out, _ := exec.Command(bin, "-w", "-t", "nat", "-S").Output()
	var chains []string
	for _, l := range strings.Split(string(out), "\n") {
		if c, ok := strings.CutPrefix(l, "-N FLOTILLA-"); ok {
			chains = append(chains, "FLOTILLA-"+c)
		}
	}
	return chains
}

// sandboxProcessAlive reports whether pid runs, is not a zombie, and has
// dir on its command line (a reused PID does not count).
func sandboxProcessAlive(pid int, dir string) bool {
	if pid <= 1 {
		return false
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return bytes.Contains(cmdline, []byte(dir))
}

// processesMentioning lists live, non-zombie processes whose command line
// contains s.
func processesMentioning(s string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if sandboxProcessAlive(pid, s) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// httpGet fetches url on a new connection and returns the body.
func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return string(b), err
}
