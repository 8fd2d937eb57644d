package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// stackRunLabel marks what a docker stack test makes on the engine
// (containers, volumes), with the run's ID as its value.
const stackRunLabel = "com.flotilla.e2e"

// dockerStackEnv is what a docker stack test needs: the docker CLI, this
// machine's engine, an image of the e2e app, and cleanups that remove
// what the run left on the engine.
type dockerStackEnv struct {
	t      *testing.T
	cli    dockerCLI
	config string // an empty DOCKER_CONFIG
	api    *client.Client
	runID  string
	image  string
	c      *cluster // set once the cluster is up
}

// dockerCLI is one docker CLI binary on this machine.
type dockerCLI struct {
	bin     string
	version string // "28.2.2"
	// detach: its `stack deploy` has --detach (docker 26 and later), and
	// with --detach=false waits for the services to converge.
	detach bool
}

// dockerCLIs returns the distinct docker CLIs of this machine (the one
// on PATH, /usr/bin/docker, /usr/local/bin/docker), or skips the test
// when there is none. Probing them asks no engine anything: DOCKER_HOST
// names a socket that does not exist.
func dockerCLIs(t *testing.T) []dockerCLI {
	t.Helper()
	requireE2E(t)
	candidates := []string{"/usr/bin/docker", "/usr/local/bin/docker"}
	if p, err := exec.LookPath("docker"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	env := cleanEnv([]string{"DOCKER_HOST=unix:///nonexistent/flotilla-e2e.sock", "DOCKER_CONFIG=" + tempDir(t)})
	versionRE := regexp.MustCompile(`Docker version ([^,\s]+)`)
	var out []dockerCLI
	seen := map[string]bool{}
	for _, bin := range candidates {
		r := run(cliTimeout, env, bin, "--version")
		m := versionRE.FindStringSubmatch(r.stdout)
		if r.err != nil || m == nil || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		help := run(cliTimeout, env, bin, "stack", "deploy", "--help")
		out = append(out, dockerCLI{bin: bin, version: m[1], detach: strings.Contains(help.stdout, "--detach")})
	}
	if len(out) == 0 {
		t.Skip("no docker CLI on this machine; this test checks that `docker stack deploy` works against flotilla")
	}
	return out
}

// forEachDockerCLI runs test as a subtest once per docker CLI of this
// machine, each with a cluster of its own.
func forEachDockerCLI(t *testing.T, test func(t *testing.T, cli dockerCLI)) {
	for _, cli := range dockerCLIs(t) {
		t.Run("docker-"+cli.version, func(t *testing.T) {
			t.Logf("the docker CLI %s (%s)", cli.bin, cli.version)
			test(t, cli)
		})
	}
}

// newDockerStackEnv skips the test when the docker CLI or the engine is
// missing, builds the image and registers the cleanups: they run after
// the cluster's (registered later), so the daemons are gone before their
// containers, bridges, volumes and the image are removed.
func newDockerStackEnv(t *testing.T, cli dockerCLI) *dockerStackEnv {
	t.Helper()
	api := engineOrSkip(t)
	e := &dockerStackEnv{t: t, cli: cli, config: tempDir(t), api: api, runID: randHex(6)}
	e.image = "flotilla-e2e/stack:" + e.runID
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	buildE2EImage(ctx, t, api, e.image)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		vols, err := api.VolumeList(ctx, client.VolumeListOptions{Filters: client.Filters{}.Add("label", stackRunLabel+"="+e.runID)})
		if err != nil {
			t.Errorf("cleanup: listing volumes: %v", err)
		}
		for _, v := range vols.Items {
			if _, err := api.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil {
				t.Errorf("cleanup: removing volume %s: %v", v.Name, err)
			}
		}
		for _, name := range e.bridges(ctx) {
			if _, err := api.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
				t.Errorf("cleanup: removing bridge %s: %v", name, err)
			}
		}
		if _, err := api.ImageRemove(ctx, e.image, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("cleanup: removing image %s: %v", e.image, err)
		}
	})
	removeContainersAtEnd(t, api, client.Filters{}.Add("label", "com.flotilla.managed=true", stackRunLabel+"="+e.runID))
	return e
}

// docker runs the docker CLI against node n's socket only.
func (e *dockerStackEnv) docker(n *node, args ...string) cliResult {
	env := cleanEnv([]string{"DOCKER_HOST=" + n.host(), "DOCKER_CONFIG=" + e.config})
	return run(cliTimeout, env, e.cli.bin, args...)
}

// must runs the docker CLI on n and fails the test unless it succeeds;
// it returns stdout.
func (e *dockerStackEnv) must(n *node, args ...string) string {
	e.t.Helper()
	r := e.docker(n, args...)
	if r.err != nil {
		e.t.Fatalf("on %s (after %s): %v\nstdout:\n%s", n, r.elapsed.Round(time.Millisecond), r.err, r.stdout)
	}
	return r.stdout
}

// bridges lists the engine bridges flotilla's nodes of this test made
// for swarm networks.
func (e *dockerStackEnv) bridges(ctx context.Context) []string {
	if e.c == nil {
		return nil
	}
	var out []string
	for _, n := range e.c.nodes {
		if n.id == "" {
			continue
		}
		res, err := e.api.NetworkList(ctx, client.NetworkListOptions{Filters: client.Filters{}.Add("label", "com.flotilla.managed=true", "com.docker.swarm.node.id="+n.id)})
		if err != nil {
			e.t.Errorf("listing %s's bridges: %v", n, err)
			continue
		}
		for _, nw := range res.Items {
			out = append(out, nw.Name)
		}
	}
	return out
}

// containers lists the engine's containers of this run, running or not.
func (e *dockerStackEnv) containers(ctx context.Context) ([]string, error) {
	res, err := e.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", stackRunLabel+"="+e.runID)})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ct := range res.Items {
		out = append(out, fmt.Sprintf("%s(%s %s)", strings.Join(ct.Names, ","), ct.ID[:12], ct.State))
	}
	return out, nil
}

// writeFiles writes name → content files into a new directory and
// returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := tempDir(t)
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// waitLogLine waits until a line of `docker service logs svc` on n ends
// with want.
func (e *dockerStackEnv) waitLogLine(n *node, svc, want string) {
	e.t.Helper()
	eventually(e.t, 20*time.Second, func() error {
		r := e.docker(n, "service", "logs", svc)
		if r.err != nil {
			return r.err
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.HasSuffix(strings.TrimSpace(l), want) {
				return nil
			}
		}
		return fmt.Errorf("docker service logs %s has no line ending with %q:\n%s", svc, want, r.stdout)
	})
}

// TestDockerStackDeploy deploys, with the unmodified `docker stack
// deploy` of each docker CLI on the machine (--detach=false where it
// has it), a compose file of two docker-driver services on one overlay
// network: a front end with a published port, placed on the manager,
// and a back end with a secret, a config and a health check, placed on
// a worker; another worker runs nothing. The stack converges (the back
// end runs once healthy); the front answers on the published port of
// every node with what it got from the back end, reached across nodes
// by its short name; the back end read its secret and config; a
// redeploy of the same file replaces no task. `docker stack rm` then
// leaves no service, network, secret, config, container, task program,
// engine bridge, port listener or secret file behind.
func TestDockerStackDeploy(t *testing.T) {
	forEachDockerCLI(t, testDockerStackDeploy)
}

func testDockerStackDeploy(t *testing.T, cli dockerCLI) {
	e := newDockerStackEnv(t, cli)
	port := freePort(t)
	dir := writeFiles(t, map[string]string{
		"pw.txt":   "s3cret-" + e.runID,
		"conf.txt": "greeting-" + e.runID,
		"compose.yml": fmt.Sprintf(`version: "3.8"
services:
  front:
    image: %[1]s
    environment: {E2E_SERVE: "1", E2E_FRONT: "1"}
    labels: {com.flotilla.driver: docker, %[2]s: "%[3]s"}
    ports: ["%[4]d:80"]
    networks: [app]
    deploy:
      placement: {constraints: [node.role == manager]}
      update_config: {monitor: 1s}
  back:
    image: %[1]s
    environment: {E2E_SERVE: "1", E2E_READ: "/run/secrets/pw,/etc/greeting.txt"}
    labels: {com.flotilla.driver: docker, %[2]s: "%[3]s"}
    networks: [app]
    deploy:
      placement: {constraints: [node.hostname == w1]}
      update_config: {monitor: 1s}
    secrets: [pw]
    configs:
      - source: conf
        target: /etc/greeting.txt
    healthcheck:
      test: ["CMD", "/app", "healthcheck"]
      interval: 1s
      timeout: 3s
      retries: 3
networks:
  app: {}
secrets:
  pw:
    file: ./pw.txt
configs:
  conf:
    file: ./conf.txt
`, e.image, stackRunLabel, e.runID, port),
	})

	// No --no-docker: the nodes offer the docker driver. w2 runs no task
	// at all, and must publish the port all the same.
	e.c = newCluster(t, 1, 2)
	c := e.c
	m1, w1 := c.managers[0], c.workers[0]
	start := time.Now()
	// With --detach=false (where the CLI has it) the CLI waits, with its
	// progress display, until both services converged.
	deploy := []string{"stack", "deploy", "-c", filepath.Join(dir, "compose.yml"), "e2e"}
	if cli.detach {
		deploy = slices.Insert(deploy, 2, "--detach=false")
	}
	out := e.must(m1, deploy...)
	t.Logf("docker %s (%s):\n%s", strings.Join(deploy, " "), time.Since(start).Round(time.Millisecond), withoutProgress(out))
	if n := len(regexp.MustCompile(`(?m)^verify: Service \S+ converged`).FindAllString(out, -1)); cli.detach && n != 2 {
		t.Errorf("docker stack deploy --detach=false saw %d services converge, want 2:\n%s", n, withoutProgress(out))
	}
	for _, w := range []string{"Creating network e2e_app", "Creating secret e2e_pw", "Creating config e2e_conf", "Creating service e2e_front", "Creating service e2e_back"} {
		if !strings.Contains(out, w) {
			t.Errorf("docker stack deploy did not say %q:\n%s", w, out)
		}
	}
	// The front on the manager, the back end on w1: the front reaches it
	// across nodes, and the workers' published ports reach the front on
	// another node.
	m1.waitRunning(t, "e2e_back", 1, convergeTimeout, nodeNames(w1))
	m1.waitRunning(t, "e2e_front", 1, convergeTimeout, nodeNames(m1))
	t.Logf("both services run %s after the deploy began", time.Since(start).Round(time.Millisecond))

	// What docker's own stack verbs show.
	eventually(t, convergeTimeout, func() error {
		r := e.docker(m1, "stack", "services", "--format", "{{.Name}} {{.Replicas}}", "e2e")
		if r.err != nil {
			return r.err
		}
		if got := strings.Fields(r.stdout); strings.Join(got, " ") != "e2e_back 1/1 e2e_front 1/1" {
			return fmt.Errorf("docker stack services e2e printed %q", r.stdout)
		}
		return nil
	})
	if out := e.must(m1, "stack", "ls", "--format", "{{.Name}} {{.Services}}"); strings.TrimSpace(out) != "e2e 2" {
		t.Errorf("docker stack ls printed %q, want \"e2e 2\"", out)
	}
	if out := e.must(m1, "stack", "ps", "--format", "{{.Name}} {{.DesiredState}} {{.CurrentState}}", "e2e"); strings.Count(out, "Running Running") != 2 {
		t.Errorf("docker stack ps e2e does not show two running tasks:\n%s", out)
	}

	// The back end is healthy by the engine's own check, and read its
	// secret and config.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	eventually(t, convergeTimeout, func() error {
		res, err := e.api.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", "com.docker.swarm.service.name=e2e_back", stackRunLabel+"="+e.runID)})
		if err != nil {
			return err
		}
		if len(res.Items) != 1 {
			return fmt.Errorf("%d running containers of e2e_back, want 1", len(res.Items))
		}
		if st := res.Items[0].Status; !strings.Contains(st, "(healthy)") {
			return fmt.Errorf("e2e_back's container is %q, want healthy", st)
		}
		return nil
	})
	e.waitLogLine(m1, "e2e_back", "read /run/secrets/pw: s3cret-"+e.runID)
	e.waitLogLine(m1, "e2e_back", "read /etc/greeting.txt: greeting-"+e.runID)

	// Every node's published port reaches the front, which reaches the
	// back end by its short name.
	backTasks, err := m1.runningTasks("e2e_back", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nodes {
		eventually(t, convergeTimeout, func() error {
			a, err := frontAsk(n.publishHost, uint32(port), "dial back:80")
			if err != nil {
				return fmt.Errorf("%s's published port: %v", n, err)
			}
			if a["err"] != "" || a["back_task"] != backTasks[0].ID {
				return fmt.Errorf("the front through %s's published port %s:%d answered %v; want back's task %s", n, n.publishHost, port, a, backTasks[0].ID)
			}
			return nil
		})
	}
	// Another user's programs' environments are readable by root only.
	seeProcs := os.Geteuid() == 0
	if procs := nodeTaskProcs(c); seeProcs && len(procs) != 2 {
		t.Errorf("%d task programs run on this machine, want 2 (front and back): %v", len(procs), procs)
	}
	// A redeploy of the same file updates both services and replaces no
	// task: checked once the CLI saw them converge, or, from a CLI that
	// does not wait, over a few monitor periods.
	frontTasks, err := m1.runningTasks("e2e_front", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	r := e.docker(m1, deploy...)
	if r.err != nil {
		t.Fatalf("docker stack deploy of the same file (after %s): %v\nstdout:\n%s", r.elapsed.Round(time.Millisecond), r.err, r.stdout)
	}
	t.Logf("docker %s again (%s):\n%s\nstderr:\n%s", strings.Join(deploy, " "), time.Since(start).Round(time.Millisecond), withoutProgress(r.stdout), r.stderr)
	for _, w := range []string{"Updating service e2e_front", "Updating service e2e_back"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("docker stack deploy of the same file did not say %q:\n%s", w, r.stdout)
		}
	}
	sameTasks := func() error {
		for svc, before := range map[string]string{"e2e_front": frontTasks[0].ID, "e2e_back": backTasks[0].ID} {
			rows, err := m1.runningTasks(svc, 1, nil)
			if err != nil {
				return err
			}
			if rows[0].ID != before {
				return fmt.Errorf("a redeploy of the same file replaced %s's task %s with %v", svc, before, rows[0])
			}
		}
		return nil
	}
	if cli.detach {
		if err := sameTasks(); err != nil {
			t.Error(err)
		}
	} else {
		consistently(t, 3*time.Second, sameTasks)
	}
	if len(taskFileDirs(t, c)) == 0 {
		t.Errorf("no node has a task directory of secret and config files while e2e_back runs with a secret")
	}
	// The nodes' engine bridges of e2e_app, watched by name below.
	bridges := e.bridges(ctx)
	if len(bridges) == 0 {
		t.Errorf("no engine bridge for e2e_app while its tasks run")
	}
	for _, b := range bridges {
		if !strings.HasPrefix(b, "flotilla_e2e_app_") {
			t.Errorf("engine bridge %s of this run is not e2e_app's (flotilla_e2e_app_<hash>)", b)
		}
	}

	start = time.Now()
	out = e.must(m1, "stack", "rm", "e2e")
	t.Logf("docker stack rm (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	eventually(t, convergeTimeout, func() error {
		for _, verb := range [][]string{{"stack", "ls", "--format", "{{.Name}}"}, {"service", "ls", "-q"}, {"secret", "ls", "-q"}, {"config", "ls", "-q"},
			{"network", "ls", "-q", "--filter", "label=com.docker.stack.namespace=e2e"}} {
			r := e.docker(m1, verb...)
			if r.err != nil {
				return r.err
			}
			if strings.TrimSpace(r.stdout) != "" {
				return fmt.Errorf("docker %s still lists %q", strings.Join(verb, " "), r.stdout)
			}
		}
		if left, err := e.containers(ctx); err != nil || len(left) > 0 {
			return fmt.Errorf("containers left on the engine: %v %v", left, err)
		}
		if left := e.bridges(ctx); len(left) > 0 {
			return fmt.Errorf("engine bridges left: %v", left)
		}
		for _, b := range bridges {
			if _, err := e.api.NetworkInspect(ctx, b, client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
				return fmt.Errorf("engine bridge %s: %v; want it gone", b, err)
			}
		}
		for _, n := range c.nodes {
			if conn, err := net.DialTimeout("tcp", net.JoinHostPort(n.publishHost, strconv.Itoa(port)), time.Second); err == nil {
				conn.Close()
				return fmt.Errorf("port %d still answers on %s (%s)", port, n, n.publishHost)
			}
		}
		if left := nodeTaskProcs(c); len(left) > 0 {
			return fmt.Errorf("task programs still run: %v", left)
		}
		if left := taskFileDirs(t, c); len(left) > 0 {
			return fmt.Errorf("task directories of secret and config files left: %v", left)
		}
		return nil
	})
	t.Logf("everything gone %s after docker stack rm began", time.Since(start).Round(time.Millisecond))
}

// taskFileDirs lists the task directories of the cluster's nodes where
// secrets and configs are delivered: /dev/shm/flotilla/<node> when
// /dev/shm is a tmpfs, else the tmpfs a root daemon mounts at
// <data>/taskfiles.
func taskFileDirs(t *testing.T, c *cluster) []string {
	t.Helper()
	var out []string
	for _, n := range c.nodes {
		if n.id == "" {
			continue
		}
		for _, base := range []string{filepath.Join("/dev/shm/flotilla", n.id), filepath.Join(n.dataDir, "taskfiles")} {
			ents, err := os.ReadDir(base)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, ent := range ents {
				out = append(out, filepath.Join(base, ent.Name()))
			}
		}
	}
	return out
}

// nodeTaskProcs lists the live programs on this machine that a node of
// the cluster runs as a task (a container's program is a process here
// too), by the FLOTILLA_NODE_ID in their environment.
func nodeTaskProcs(c *cluster) []string {
	ids := map[string]bool{}
	for _, n := range c.nodes {
		if n.id != "" {
			ids[n.id] = true
		}
	}
	var out []string
	for _, pid := range pids() {
		args := procArgs(pid)
		if slices.Contains(args, "healthcheck") {
			continue // the engine's health check, exec'd in a container for a moment
		}
		if env := procEnv(pid); ids[env["FLOTILLA_NODE_ID"]] && alive(pid) {
			out = append(out, fmt.Sprintf("%d %s (task %s)", pid, strings.Join(args, " "), env["FLOTILLA_TASK_ID"]))
		}
	}
	return out
}

// withoutProgress drops the lines of docker's progress display (one per
// frame when its output is not a terminal) but the last of each kind.
func withoutProgress(out string) string {
	var keep []string
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		kind, _, _ := strings.Cut(l, ":")
		if i+1 < len(lines) && kind != "" && strings.HasPrefix(lines[i+1], kind+":") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// TestDockerStackVolume deploys, with `docker stack deploy` (each
// docker CLI on the machine), a stateful docker-driver service
// constrained to one node, with a named volume from the compose file's
// top-level volumes and a bind-mounted file. The task reads the file
// and appends to the volume; when its task is replaced on the same
// node, by `docker service update --force` and by a redeploy of a
// changed file, the new task finds what the old ones wrote. `docker
// stack rm` removes the service and its containers but, as with
// dockerd, keeps the volume. (TestDockerMounts shows the same with
// --mount.)
func TestDockerStackVolume(t *testing.T) {
	forEachDockerCLI(t, testDockerStackVolume)
}

func testDockerStackVolume(t *testing.T, cli dockerCLI) {
	e := newDockerStackEnv(t, cli)
	bindDir := writeFiles(t, map[string]string{"bound.txt": "bound-" + e.runID})
	compose := fmt.Sprintf(`version: "3.8"
services:
  db:
    image: %[1]s
    environment: {E2E_READ: /cfg/bound.txt, E2E_APPEND: /data/log}
    labels: {com.flotilla.driver: docker, %[2]s: "%[3]s"}
    volumes:
      - data:/data
      - type: bind
        source: %[4]s
        target: /cfg/bound.txt
        read_only: true
    deploy:
      placement:
        constraints: [node.hostname == w1]
      update_config: {monitor: 1s}
volumes:
  data:
    labels: {%[2]s: "%[3]s"}
`, e.image, stackRunLabel, e.runID, filepath.Join(bindDir, "bound.txt"))
	dir := writeFiles(t, map[string]string{"compose.yml": compose})
	file := filepath.Join(dir, "compose.yml")

	e.c = newCluster(t, 1, 1)
	m1, w1 := e.c.managers[0], e.c.workers[0]
	onW1 := nodeNames(w1)
	out := e.must(m1, "stack", "deploy", "-c", file, "vol")
	t.Logf("docker stack deploy:\n%s", out)
	first := m1.waitRunning(t, "vol_db", 1, convergeTimeout, onW1)[0]
	e.waitLogLine(m1, "vol_db", "read /cfg/bound.txt: bound-"+e.runID)
	e.waitLogLine(m1, "vol_db", "data in /data/log:") // the volume is new

	// The stack's volume is on the engine, named and labelled as dockerd
	// would: the stack's namespace and the compose file's labels.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	vol, err := e.api.VolumeInspect(ctx, "vol_data", client.VolumeInspectOptions{})
	if err != nil {
		t.Fatalf("the stack's volume vol_data on the engine: %v", err)
	}
	if l := vol.Volume.Labels; l["com.docker.stack.namespace"] != "vol" || l[stackRunLabel] != e.runID {
		t.Errorf("volume vol_data has labels %v, want the stack's namespace and %s=%s", l, stackRunLabel, e.runID)
	}

	// replaced waits until a task other than old runs on w1, and returns it.
	replaced := func(old psRow) psRow {
		t.Helper()
		var now psRow
		eventually(t, convergeTimeout, func() error {
			rows, err := m1.runningTasks("vol_db", 1, onW1)
			if err != nil {
				return err
			}
			if now = rows[0]; now.ID == old.ID {
				return fmt.Errorf("task %v still runs", old)
			}
			return nil
		})
		return now
	}
	start := time.Now()
	r := e.docker(m1, "service", "update", "--force", "vol_db")
	if r.err != nil {
		t.Fatalf("docker service update --force (after %s): %v\nstdout:\n%s", r.elapsed.Round(time.Millisecond), r.err, r.stdout)
	}
	t.Logf("docker service update --force (%s):\n%s", time.Since(start).Round(time.Millisecond), withoutProgress(r.stdout))
	second := replaced(first)
	e.waitLogLine(m1, "vol_db", "data in /data/log: task "+first.ID)

	// A redeploy of a changed file replaces the task again.
	changed := strings.Replace(compose, "E2E_APPEND: /data/log}", "E2E_APPEND: /data/log, VERSION: \"2\"}", 1)
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out = e.must(m1, "stack", "deploy", "-c", file, "vol")
	if !strings.Contains(out, "Updating service vol_db") {
		t.Errorf("docker stack deploy of a changed file:\n%s", out)
	}
	replaced(second)
	e.waitLogLine(m1, "vol_db", "data in /data/log: task "+first.ID+" task "+second.ID)

	out = e.must(m1, "stack", "rm", "vol")
	t.Logf("docker stack rm:\n%s", out)
	eventually(t, convergeTimeout, func() error {
		if r := e.docker(m1, "service", "ls", "-q"); r.err != nil || strings.TrimSpace(r.stdout) != "" {
			return fmt.Errorf("docker service ls -q after docker stack rm: %q %v", r.stdout, r.err)
		}
		if left, err := e.containers(ctx); err != nil || len(left) > 0 {
			return fmt.Errorf("containers left on the engine: %v %v", left, err)
		}
		return nil
	})
	if _, err := e.api.VolumeInspect(ctx, "vol_data", client.VolumeInspectOptions{}); err != nil {
		t.Errorf("docker stack rm removed the volume (dockerd keeps it): %v", err)
	}
}
