package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestDockerCLIServices drives process-driver services with the unmodified
// docker CLI: create (with docker's own progress display), ls, ps, scale,
// update, logs and rm. DOCKER_HOST and an empty DOCKER_CONFIG are set in
// each command's environment only, so no command reaches this machine's
// engine.
func TestDockerCLIServices(t *testing.T) {
	requireE2E(t)
	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("the docker CLI is not on PATH; this test checks that it drives flotilla's services")
	}
	c := processCluster(t, 1, 1)
	m1 := c.managers[0]
	config := tempDir(t)
	docker := func(timeout time.Duration, args ...string) cliResult {
		env := cleanEnv([]string{"DOCKER_HOST=" + m1.host(), "DOCKER_CONFIG=" + config})
		return run(timeout, env, dockerBin, args...)
	}
	must := func(timeout time.Duration, args ...string) string {
		t.Helper()
		r := docker(timeout, args...)
		if r.err != nil {
			t.Fatalf("after %s: %v\nstdout:\n%s", r.elapsed.Round(time.Millisecond), r.err, r.stdout)
		}
		return r.stdout
	}
	converged := func(what, out string) {
		t.Helper()
		if !containsAny(out, "converged") {
			t.Errorf("%s: docker's progress display did not end with convergence:\n%s", what, out)
		}
	}
	// lsRow returns the fields of service d in the `docker service ls` table.
	lsRow := func(name string) []string {
		t.Helper()
		out := must(cliTimeout, "service", "ls")
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) == 0 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "REPLICAS") {
			t.Fatalf("docker service ls printed no header:\n%s", out)
		}
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) >= 5 && f[1] == name {
				return f
			}
		}
		t.Fatalf("docker service ls does not list %s:\n%s", name, out)
		return nil
	}
	// running returns the ID, name and node of every task of svc meant to
	// run, once there are want of them, all running.
	running := func(svc string, want int) [][]string {
		t.Helper()
		var tasks [][]string
		eventually(t, convergeTimeout, func() error {
			out := docker(cliTimeout, "service", "ps", "--no-trunc", "--filter", "desired-state=running",
				"--format", "{{.ID}} {{.Name}} {{.Node}} {{.CurrentState}}", svc)
			if out.err != nil {
				return out.err
			}
			tasks = nil
			for _, l := range strings.Split(strings.TrimSpace(out.stdout), "\n") {
				f := strings.Fields(l)
				if len(f) < 4 || f[3] != "Running" {
					return fmt.Errorf("docker service ps %s: task not running: %q", svc, l)
				}
				tasks = append(tasks, f[:3])
			}
			if len(tasks) != want {
				return fmt.Errorf("docker service ps %s: %d tasks meant to run, want %d:\n%s", svc, len(tasks), want, out.stdout)
			}
			return nil
		})
		return tasks
	}
	procsOf := func(svc string, want int) []taskProc {
		t.Helper()
		var procs []taskProc
		eventually(t, 10*time.Second, func() error {
			procs = serviceProcs(svc, c.nodes...)
			if len(procs) != want {
				return fmt.Errorf("%d programs of %s run, want %d: %v", len(procs), svc, want, procs)
			}
			return nil
		})
		return procs
	}

	// What flotilla does not do yet is refused with the field named, and
	// nothing is created (it was accepted and silently dropped).
	// A bad value is refused with what is wrong.
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"-p", "8080:80/sctp"}, "not supported yet"},
		{[]string{"--mount", "type=bind,source=tmp,target=/data"}, "invalid bind mount source, must be an absolute path: tmp"},
		{[]string{"--health-cmd", "true", "--health-interval", "500us"}, "Healthcheck.Interval 500µs cannot be less than 1ms"},
	} {
		args := append([]string{"service", "create", "--name", "refused", "--container-label", "com.flotilla.driver=process"}, tc.flags...)
		r := docker(cliTimeout, append(args, "/bin/sleep", "1000")...)
		if r.err == nil || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("docker service create %v: err %v, stderr %q; want a refusal saying %q", tc.flags, r.err, r.stderr, tc.want)
		}
	}
	if out := must(cliTimeout, "service", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("refused creates left services behind: %q", out)
	}

	start := time.Now()
	out := must(serviceTimeout, "service", "create", "--name", "d", "--replicas", "2",
		"--container-label", "com.flotilla.driver=process", "--update-monitor", "1s",
		"/bin/sh", "-c", `echo "hello-$FLOTILLA_TASK_SLOT"; exec sleep 1000`)
	t.Logf("docker service create converged in %s", time.Since(start).Round(time.Millisecond))
	converged("docker service create", out)
	if f := lsRow("d"); f[2] != "replicated" || f[3] != "2/2" || f[4] != "/bin/sh" {
		t.Errorf("docker service ls: d is %v, want replicated 2/2 /bin/sh", f)
	}
	out = must(cliTimeout, "service", "ps", "d")
	if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); len(lines) != 3 || !strings.Contains(lines[0], "DESIRED STATE") ||
		strings.Count(out, " Running ") < 4 {
		t.Errorf("docker service ps d: want a header and 2 running tasks:\n%s", out)
	}
	running("d", 2)
	procsOf("d", 2)

	out = must(serviceTimeout, "service", "scale", "d=3")
	converged("docker service scale", out)
	if f := lsRow("d"); f[3] != "3/3" {
		t.Errorf("docker service ls after scale d=3: %v", f)
	}
	running("d", 3)
	procsOf("d", 3)

	out = must(serviceTimeout, "service", "update", "--env-add", "A=1", "d")
	converged("docker service update", out)
	tasks := running("d", 3)
	eventually(t, 10*time.Second, func() error {
		procs := serviceProcs("d", c.nodes...)
		if len(procs) != 3 {
			return fmt.Errorf("%d programs of d run after the update, want 3: %v", len(procs), procs)
		}
		for _, p := range procs {
			if p.env["A"] != "1" {
				return fmt.Errorf("program %v has A=%q after --env-add A=1", p, p.env["A"])
			}
		}
		return nil
	})

	logLine := regexp.MustCompile(`^d\.(\d+)\.([0-9a-z]+)@(\S+)\s+\| hello-(\d+)$`)
	eventually(t, 10*time.Second, func() error {
		r := docker(cliTimeout, "service", "logs", "d")
		if r.err != nil {
			return r.err
		}
		for _, task := range tasks {
			id, name, node := task[0], task[1], task[2]
			found := false
			for _, l := range strings.Split(r.stdout, "\n") {
				m := logLine.FindStringSubmatch(l)
				if m != nil && strings.HasPrefix(id, m[2]) && m[3] == node && "d."+m[1] == name && m[1] == m[4] {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("docker service logs d shows no line of task %s (%s on %s):\n%s", id, name, node, r.stdout)
			}
		}
		return nil
	})

	if out := must(serviceTimeout, "service", "rm", "d"); strings.TrimSpace(out) != "d" {
		t.Errorf("docker service rm d printed %q", out)
	}
	eventually(t, 15*time.Second, func() error {
		if left := serviceProcs("d", c.nodes...); len(left) > 0 {
			return fmt.Errorf("programs of d still run after docker service rm: %v", left)
		}
		return nil
	})

	// The docker CLI sends a bare program name as NAME:latest; the process
	// driver runs NAME. Its health flags arrive as Docker sends them, and
	// the task runs once the check passed.
	must(cliTimeout, "service", "create", "-d", "--name", "bare", "--container-label", "com.flotilla.driver=process",
		"--health-cmd", "true", "--health-interval", "100ms", "--health-retries", "2", "sleep", "1000")
	if hc := strings.TrimSpace(must(cliTimeout, "service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck}}", "bare")); hc != `{"Test":["CMD-SHELL","true"],"Interval":100000000,"Retries":2}` {
		t.Errorf("docker service create --health-*: Healthcheck %s", hc)
	}
	running("bare", 1)
	if p := procsOf("bare", 1)[0]; progName(p.args[0]) != "sleep" || !slices.Equal(p.args[1:], []string{"1000"}) {
		t.Errorf("docker service create sleep 1000 runs %v", p)
	}
	must(cliTimeout, "service", "rm", "bare")
	eventually(t, 15*time.Second, func() error {
		if left := serviceProcs("bare", c.nodes...); len(left) > 0 {
			return fmt.Errorf("programs of bare still run after docker service rm: %v", left)
		}
		return nil
	})
}

// engineHost is the real Docker Engine the docker-driver test uses (never
// DOCKER_HOST, which may point at a flotilla socket).
const engineHost = "unix:///var/run/docker.sock"

// TestDockerDriverService runs a service through the docker driver on the
// real engine: an image built here from a static Go program, two replicas
// with a memory limit. The containers carry swarm's labels and the limit,
// `service logs` shows the program's line, and `service rm` removes them.
// Only containers labelled with this run's com.flotilla.e2e value and the
// image made here are ever touched.
func TestDockerDriverService(t *testing.T) {
	requireE2E(t)
	api, err := client.New(client.WithHost(engineHost))
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pingCtx, pingCancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = api.Ping(pingCtx, client.PingOptions{NegotiateAPIVersion: true})
	pingCancel()
	if err != nil {
		reason := fmt.Sprintf("no Docker Engine answers at %s: %v", engineHost, err)
		fmt.Fprintln(os.Stderr, "TestDockerDriverService skipped:", reason)
		t.Skip(reason)
	}

	runID := randHex(6)
	image := "flotilla-e2e/app:" + runID
	const runLabel = "com.flotilla.e2e"
	start := time.Now()
	buildE2EImage(ctx, t, api, image)
	t.Logf("built and imported %s in %s", image, time.Since(start).Round(time.Millisecond))
	// Cleanups run last-registered first: the daemons go, then their
	// containers, then the image.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := api.ImageRemove(ctx, image, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("removing image %s: %v", image, err)
		}
	})
	ours := func() client.Filters {
		return client.Filters{}.Add("label", "com.flotilla.managed=true", runLabel+"="+runID)
	}
	removeContainersAtEnd(t, api, ours())

	c := newCluster(t, 1, 1) // no --no-docker: the nodes offer the docker driver
	m1 := c.managers[0]
	port := freePort(t)
	r := m1.mustService(t, "service", "create", "--name", "dsvc", "--driver", "docker", "--replicas", "2",
		"--limit-memory", "64M", "--container-label", runLabel+"="+runID, "--update-monitor", "1s",
		"-p", fmt.Sprintf("%d:80", port), "-e", "E2E_SERVE=1", image)
	t.Logf("service create (docker driver, 2 replicas) converged in %s", r.elapsed.Round(time.Millisecond))
	serviceID := strings.TrimSpace(strings.SplitN(r.stdout, "\n", 2)[0])
	rows, err := m1.runningTasks("dsvc", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		f := client.Filters{}.Add("label", "com.docker.swarm.task.id="+row.ID, runLabel+"="+runID)
		res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Items) != 1 {
			t.Errorf("task %v: %d containers on the engine, want 1", row, len(res.Items))
			continue
		}
		ct := res.Items[0]
		if ct.State != container.StateRunning {
			t.Errorf("task %v: container %s is %s", row, ct.ID, ct.State)
		}
		for k, want := range map[string]string{
			"com.docker.swarm.service.id":   serviceID,
			"com.docker.swarm.service.name": "dsvc",
			"com.docker.swarm.node.id":      c.node(row.Node).id,
			"com.flotilla.managed":          "true",
		} {
			if got := ct.Labels[k]; got != want {
				t.Errorf("task %v: container label %s=%q, want %q", row, k, got, want)
			}
		}
		ins, err := api.ContainerInspect(ctx, ct.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if hc := ins.Container.HostConfig; hc == nil || hc.Memory != 64<<20 {
			t.Errorf("task %v: container memory limit %+v, want %d", row, hc, 64<<20)
		}
	}

	// The published port reaches both containers from either node, on
	// their bridge addresses: no host port is opened for them.
	for _, n := range c.nodes {
		eventually(t, convergeTimeout, func() error {
			seen, err := meshNodes(n.publishHost, uint32(port), 8)
			if err != nil {
				return err
			}
			if len(seen) != 2 {
				return fmt.Errorf("connections to %s:%d reached tasks on %v; want both nodes", n.publishHost, port, seen)
			}
			return nil
		})
	}

	line := regexp.MustCompile(`^dsvc\.(\d+)\.([0-9a-z]+)@(\S+)\s+\| hello from the flotilla e2e app, slot (\d+)$`)
	eventually(t, 10*time.Second, func() error {
		out, _, err := m1.CLI("service", "logs", "dsvc")
		if err != nil {
			return err
		}
		for _, row := range rows {
			found := false
			for _, l := range strings.Split(out, "\n") {
				if m := line.FindStringSubmatch(l); m != nil && strings.HasPrefix(row.ID, m[2]) && m[3] == row.Node && "dsvc."+m[1] == row.Name {
					found = true
				}
			}
			if !found {
				return fmt.Errorf("service logs dsvc shows no line of %v:\n%s", row, out)
			}
		}
		return nil
	})

	m1.mustService(t, "service", "rm", "dsvc")
	eventually(t, 30*time.Second, func() error {
		res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: ours()})
		if err != nil {
			return err
		}
		if len(res.Items) > 0 {
			var ids []string
			for _, ct := range res.Items {
				ids = append(ids, fmt.Sprintf("%.12s(%s)", ct.ID, ct.State))
			}
			return fmt.Errorf("containers left after service rm: %v", ids)
		}
		return nil
	})
}

// buildE2EApp compiles testdata/e2eapp statically and returns its path.
func buildE2EApp(ctx context.Context, t *testing.T) string {
	t.Helper()
	bin := filepath.Join(tempDir(t), "app")
	// go test puts its own GOROOT/bin first on the PATH of the tests it runs.
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags=-s -w", "-o", bin, "./testdata/e2eapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/e2eapp: %v\n%s", err, out)
	}
	return bin
}

// buildE2EImage compiles testdata/e2eapp statically and imports it as ref,
// with /app as the entrypoint (there is no registry to pull from).
func buildE2EImage(ctx context.Context, t *testing.T, api *client.Client, ref string) {
	t.Helper()
	bin := buildE2EApp(ctx, t)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	if err := tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	rc, err := api.ImageImport(ctx, client.ImageImportSource{Source: &tarball, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: []string{`ENTRYPOINT ["/app"]`}})
	if err != nil {
		t.Fatalf("importing %s: %v", ref, err)
	}
	defer rc.Close()
	out, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("importing %s: %v", ref, err)
	}
	if bytes.Contains(out, []byte(`"errorDetail"`)) {
		t.Fatalf("importing %s: %s", ref, out)
	}
}
