package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// These tests run services with the process driver on daemons started with
// --no-docker, so that they behave the same whether or not this machine has
// a Docker Engine. --update-monitor 1s shortens the 5 s a converging
// command otherwise waits to see that the tasks are stable.

// processCluster starts a cluster whose daemons offer only the process
// driver.
func processCluster(t *testing.T, managers, workers int) *cluster {
	t.Helper()
	return newClusterArgs(t, managers, workers, "--no-docker")
}

// TestProcessServiceLifecycle creates a replicated service of /bin/sleep
// through the CLI, finds its processes in /proc on the nodes that
// `service ps` names, scales it down and removes it: its processes go
// away.
func TestProcessServiceLifecycle(t *testing.T) {
	c := processCluster(t, 1, 2)
	m1 := c.managers[0]

	r := m1.mustService(t, "service", "create", "--name", "web", "--replicas", "4", "--driver", "process",
		"--update-monitor", "1s", "/bin/sleep", "1000")
	t.Logf("service create (4 replicas) converged in %s", r.elapsed.Round(time.Millisecond))
	if !containsAny(r.stdout, "converged") || !strings.Contains(r.stdout, "4 out of 4 tasks") {
		t.Errorf("service create did not show its progress to convergence:\n%s", r.stdout)
	}
	// Converged means running: no waiting here.
	if got, err := m1.replicas("web"); err != nil || got != "4/4" {
		t.Errorf("right after create, service ls shows web at %q (%v), want 4/4", got, err)
	}
	rows, err := m1.runningTasks("web", 4, nil)
	if err != nil {
		t.Fatalf("right after create: %v", err)
	}
	perNode := map[string]int{}
	for _, r := range rows {
		perNode[r.Node]++
	}
	for _, n := range c.nodes {
		if perNode[n.name] < 1 || perNode[n.name] > 2 {
			t.Errorf("4 tasks on 3 nodes are not spread: %v", perNode)
			break
		}
	}
	var byTask map[string]taskProc
	eventually(t, 5*time.Second, func() (err error) {
		byTask, err = checkProcsMatch(rows, serviceProcs("web", c.nodes...))
		return err
	})
	for _, p := range byTask {
		if len(p.args) != 2 || progName(p.args[0]) != "sleep" || p.args[1] != "1000" {
			t.Errorf("program %v: want /bin/sleep 1000", p)
		}
	}

	r = m1.mustService(t, "service", "scale", "web=2")
	t.Logf("service scale web=2 took %s", r.elapsed.Round(time.Millisecond))
	m1.waitReplicas(t, "web", "2/2")
	rows = m1.waitRunning(t, "web", 2, convergeTimeout, nil)
	eventually(t, 10*time.Second, func() error {
		_, err := checkProcsMatch(rows, serviceProcs("web", c.nodes...))
		return err
	})
	for id, p := range byTask {
		if !slices.ContainsFunc(rows, func(r psRow) bool { return r.ID == id }) && alive(p.pid) {
			t.Errorf("program %v of a task scaled away still runs", p)
		}
	}

	m1.mustService(t, "service", "rm", "web")
	// A program signalled as its shim goes may take a moment to die on a
	// loaded machine, so its PID is polled too.
	eventually(t, 15*time.Second, func() error {
		if left := serviceProcs("web", c.nodes...); len(left) > 0 {
			return fmt.Errorf("after service rm, programs still run: %v", left)
		}
		for _, p := range byTask {
			if alive(p.pid) {
				return fmt.Errorf("pid %d (%v) still alive after service rm", p.pid, p)
			}
		}
		return nil
	})
	if out := m1.mustCLI(t, "service", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("service ls -q after rm printed %q", out)
	}
}

// progName returns the last element of a slash-separated path (the
// program's name).
func progName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// TestProcessServiceLogsAndWorkerKill runs a service whose tasks print a
// line, reads `service logs`, then kills one worker with SIGKILL: logs
// still show the other tasks and name the missing node (moby/moby#37336),
// the service is back at its full count on the other nodes, and once the
// worker is restarted its stale programs are stopped, so that no slot runs
// twice.
func TestProcessServiceLogsAndWorkerKill(t *testing.T) {
	c := processCluster(t, 1, 2)
	m1 := c.managers[0]
	const replicas = 4
	m1.mustService(t, "service", "create", "--name", "lg", "--replicas", fmt.Sprint(replicas), "--driver", "process",
		"--update-monitor", "1s", "/bin/sh", "-c", `echo "hello-$FLOTILLA_TASK_SLOT from $FLOTILLA_NODE_HOSTNAME"; exec sleep 1000`)
	rows, err := m1.runningTasks("lg", replicas, nil)
	if err != nil {
		t.Fatal(err)
	}

	line := regexp.MustCompile(`^lg\.(\d+)\.([0-9a-z]+)@(\S+)\s+\| hello-(\d+) from (\S+)$`)
	// logLines maps task ID prefixes to the node their line was printed
	// for; it checks every line's form.
	logLines := func(out string) map[string]string {
		t.Helper()
		got := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			m := line.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("unexpected service logs line %q", l)
				continue
			}
			if m[1] != m[4] || m[3] != m[5] {
				t.Errorf("service logs line %q: the prefix names slot %s on %s, the task says slot %s on %s", l, m[1], m[3], m[4], m[5])
			}
			got[m[2]] = m[3]
		}
		return got
	}
	hasTask := func(lines map[string]string, r psRow) bool {
		for prefix, n := range lines {
			if strings.HasPrefix(r.ID, prefix) && n == r.Node {
				return true
			}
		}
		return false
	}
	// The lines are printed as the tasks start; the logs may lag a moment.
	eventually(t, 10*time.Second, func() error {
		out := m1.mustCLI(t, "service", "logs", "lg")
		lines := logLines(out)
		for _, r := range rows {
			if !hasTask(lines, r) {
				return fmt.Errorf("service logs lg shows no line of %v:\n%s", r, out)
			}
		}
		return nil
	})

	// The victim: the worker with the most tasks.
	tasksOn := map[string]int{}
	for _, r := range rows {
		tasksOn[r.Node]++
	}
	victim := c.workers[0]
	if tasksOn[c.workers[1].name] > tasksOn[victim.name] {
		victim = c.workers[1]
	}
	if tasksOn[victim.name] == 0 {
		t.Fatalf("no worker runs a task of lg: %v", rows)
	}
	survivors := slices.DeleteFunc(slices.Clone(c.nodes), func(n *node) bool { return n == victim })
	stale := serviceProcs("lg", victim)
	if len(stale) != tasksOn[victim.name] {
		t.Fatalf("%s runs %d tasks of lg but /proc shows %v", victim, tasksOn[victim.name], stale)
	}

	victim.Kill9()
	killed := time.Now()
	t.Logf("killed %s (it ran %d of %d tasks)", victim, len(stale), replicas)

	// Logs with a node gone: the others' lines, and a word about the
	// missing node, promptly.
	lr := m1.cliTimeout(cliTimeout, "service", "logs", "lg")
	t.Logf("service logs with %s dead took %s, exit error: %v; stderr: %s", victim, lr.elapsed.Round(time.Millisecond), lr.err, strings.TrimSpace(lr.stderr))
	if lr.elapsed > 10*time.Second {
		t.Errorf("service logs with a dead node took %s", lr.elapsed)
	}
	lines := logLines(lr.stdout)
	for _, r := range rows {
		if r.Node != victim.name && !hasTask(lines, r) {
			t.Errorf("with %s dead, service logs lg shows no line of %v:\n%s", victim, r, lr.stdout)
		}
	}
	if !strings.Contains(lr.stderr, victim.name) || !containsAny(lr.stderr, "missing", "unreachable", "cannot reach", "not reachable") {
		t.Errorf("service logs lg with %s dead does not say that its logs are missing; stderr: %q", victim, lr.stderr)
	}

	// Back at full count on the other nodes.
	var recovered time.Duration
	eventually(t, 30*time.Second, func() error {
		if _, err := m1.runningTasks("lg", replicas, nodeNames(survivors...)); err != nil {
			return err
		}
		recovered = time.Since(killed)
		return nil
	})
	t.Logf("lg back at %d/%d running on the other nodes %s after kill -9 of %s", replicas, replicas, recovered.Round(time.Millisecond), victim)
	eventually(t, 10*time.Second, func() error {
		return slotsOnce(serviceProcs("lg", survivors...), replicas)
	})
	for _, p := range stale {
		if !alive(p.pid) {
			t.Logf("note: %v died with its daemon", p)
		}
	}

	// The worker comes back: its stale programs are stopped, every slot
	// runs once.
	victim.Start()
	c.waitReady(m1, convergeTimeout)
	eventually(t, 20*time.Second, func() error {
		for _, p := range stale {
			if alive(p.pid) {
				return fmt.Errorf("stale program %v still runs after %s came back", p, victim)
			}
		}
		return slotsOnce(serviceProcs("lg", c.nodes...), replicas)
	})
	consistently(t, time.Second, func() error {
		if _, err := m1.runningTasks("lg", replicas, nil); err != nil {
			return err
		}
		return slotsOnce(serviceProcs("lg", c.nodes...), replicas)
	})
}

// TestProcessAgentRestart stops a worker's daemon with SIGTERM and starts
// it again on the same data dir: its tasks' programs keep running (same
// PIDs) and nothing is started twice.
func TestProcessAgentRestart(t *testing.T) {
	c := processCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	m1.mustService(t, "service", "create", "--name", "keep", "--replicas", "2", "--driver", "process",
		"--constraint", "node.role==worker", "--update-monitor", "1s", "/bin/sleep", "1000")
	rows, err := m1.runningTasks("keep", 2, nodeNames(w1))
	if err != nil {
		t.Fatal(err)
	}
	var before map[string]taskProc
	eventually(t, 5*time.Second, func() (err error) {
		before, err = checkProcsMatch(rows, serviceProcs("keep", w1))
		return err
	})

	w1.Stop()
	for _, p := range before {
		if !alive(p.pid) {
			t.Errorf("program %v died when its daemon stopped", p)
		}
	}
	w1.Start()
	c.waitReady(m1, convergeTimeout)

	// Same tasks, same programs, no extra ones, for longer than it takes
	// to mark a silent node Down (so the restarted agent must have taken
	// its session up again, with its tasks).
	consistently(t, 4*time.Second, func() error {
		if err := rowsMatch(m1, func(m map[string]nodeRow) error {
			if m[w1.name].Status != "Ready" {
				return fmt.Errorf("%s is %s", w1, m[w1.name].Status)
			}
			return nil
		})(); err != nil {
			return err
		}
		after, err := m1.runningTasks("keep", 2, nodeNames(w1))
		if err != nil {
			return err
		}
		for _, r := range after {
			if _, ok := before[r.ID]; !ok {
				return fmt.Errorf("task %v is new after the agent restart; before: %v", r, rows)
			}
		}
		procs := serviceProcs("keep", c.nodes...)
		if len(procs) != len(before) {
			return fmt.Errorf("after the agent restart %d programs run, want %d: %v", len(procs), len(before), procs)
		}
		for _, p := range procs {
			if b := before[p.taskID]; b.pid != p.pid {
				return fmt.Errorf("program of task %s is pid %d, was %d", p.taskID, p.pid, b.pid)
			}
		}
		return nil
	})
}

// TestProcessRollingUpdate updates a service's environment one task at a
// time through the CLI, then makes an update whose program exits 1 at
// once with --update-failure-action rollback: the command fails saying
// that the update was rolled back, and the service runs its previous spec.
func TestProcessRollingUpdate(t *testing.T) {
	c := processCluster(t, 1, 1)
	m1 := c.managers[0]
	const replicas = 3
	m1.mustService(t, "service", "create", "--name", "web", "--replicas", fmt.Sprint(replicas), "--driver", "process",
		"--update-monitor", "1s", "/bin/sh", "-c", "exec sleep 1000")
	old, err := m1.runningTasks("web", replicas, nil)
	if err != nil {
		t.Fatal(err)
	}

	r := m1.mustService(t, "service", "update", "--env-add", "X=1", "--update-parallelism", "1",
		"--update-delay", "0s", "--update-monitor", "1s", "web")
	t.Logf("rolling update of %d tasks took %s", replicas, r.elapsed.Round(time.Millisecond))
	if !containsAny(r.stdout, "converged") {
		t.Errorf("service update did not show convergence:\n%s", r.stdout)
	}
	updated, err := m1.runningTasks("web", replicas, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range updated {
		if slices.ContainsFunc(old, func(o psRow) bool { return o.ID == u.ID }) {
			t.Errorf("task %v was not replaced by the update", u)
		}
	}
	var procs map[string]taskProc
	eventually(t, 10*time.Second, func() (err error) {
		procs, err = checkProcsMatch(updated, serviceProcs("web", c.nodes...))
		return err
	})
	for _, p := range procs {
		if p.env["X"] != "1" {
			t.Errorf("program %v has X=%q after --env-add X=1", p, p.env["X"])
		}
	}
	if us := strings.TrimSpace(m1.mustCLI(t, "service", "inspect", "--format", "{{.UpdateStatus.State}}", "web")); us != "completed" {
		t.Errorf("update status after the update: %q, want completed", us)
	}

	// A failing update is rolled back.
	fr := m1.cliTimeout(serviceTimeout, "service", "update", "--args", "-c 'exit 1'",
		"--update-failure-action", "rollback", "--rollback-monitor", "1s", "web")
	t.Logf("failing update: exit error after %s: %v\nstdout:\n%s", fr.elapsed.Round(time.Millisecond), fr.err, fr.stdout)
	if fr.err == nil {
		t.Fatalf("service update with a program that exits 1 succeeded:\n%s", fr.stdout)
	}
	if strings.Contains(fr.err.Error(), "timed out") {
		t.Fatalf("the failing update hangs: %v", fr.err)
	}
	if !containsAny(fr.stderr, "rolled back") {
		t.Errorf("the failing update's error does not say it was rolled back: %q", fr.stderr)
	}
	args := strings.TrimSpace(m1.mustCLI(t, "service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Args}} {{.UpdateStatus.State}}", "web"))
	if args != `["-c","exec sleep 1000"] rollback_completed` {
		t.Errorf("after the rollback the service's args and update state are %s", args)
	}
	after := m1.waitRunning(t, "web", replicas, convergeTimeout, nil)
	eventually(t, 10*time.Second, func() error {
		procs, err = checkProcsMatch(after, serviceProcs("web", c.nodes...))
		return err
	})
	for _, p := range procs {
		if p.env["X"] != "1" || len(p.args) != 2 || progName(p.args[0]) != "sleep" {
			t.Errorf("after the rollback, program %v: want sleep 1000 with X=1", p)
		}
	}
	// Docker's rollback only replaces tasks that differ from the spec it
	// returns to; those the failed update never reached keep running.
	kept := 0
	for _, a := range after {
		if slices.ContainsFunc(updated, func(u psRow) bool { return u.ID == a.ID }) {
			kept++
		}
	}
	if kept != replicas-1 {
		t.Errorf("the rollback replaced %d task(s) that already ran the spec it returned to (kept %d of %d); want only the one the failed update reached replaced\nbefore: %v\nafter: %v",
			replicas-kept, kept, replicas, updated, after)
	}
}

// TestServiceBadInput: invalid input gets a clear error and changes
// nothing.
func TestServiceBadInput(t *testing.T) {
	c := processCluster(t, 1, 0)
	m1 := c.managers[0]
	noServices := func(when string) {
		t.Helper()
		if out := m1.mustCLI(t, "service", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: services exist: %q", when, out)
		}
	}
	for _, tc := range []struct {
		name  string
		args  []string
		words []string // the error mentions one of these
	}{
		{"invalid constraint", []string{"service", "create", "--name", "bad", "--driver", "process", "--constraint", "node.role=worker", "/bin/sleep", "1000"}, []string{"constraint"}},
		{"negative replicas", []string{"service", "create", "--name", "bad", "--driver", "process", "--replicas", "-1", "/bin/sleep", "1000"}, []string{"replicas"}},
		{"ps of an unknown service", []string{"service", "ps", "nosuchsvc"}, []string{"nosuchsvc"}},
		{"rm of an unknown service", []string{"service", "rm", "nosuchsvc"}, []string{"nosuchsvc"}},
		{"scale of an unknown service", []string{"service", "scale", "nosuchsvc=2"}, []string{"nosuchsvc"}},
		{"update of an unknown service", []string{"service", "update", "--env-add", "A=1", "nosuchsvc"}, []string{"nosuchsvc"}},
	} {
		r := m1.cliTimeout(cliTimeout, tc.args...)
		msg := strings.TrimSpace(r.stderr)
		switch {
		case r.err == nil:
			t.Errorf("%s: succeeded; stdout %q", tc.name, r.stdout)
		case !containsAny(msg, tc.words...):
			t.Errorf("%s: unclear error %q (want it to mention %q)", tc.name, msg, tc.words)
		case strings.Contains(tc.name, "unknown") && !containsAny(msg, "not found", "no such"):
			t.Errorf("%s: error %q does not say the service does not exist", tc.name, msg)
		default:
			t.Logf("%s: %s", tc.name, msg)
		}
		noServices(tc.name)
	}

	// A program that does not exist on the node: the service is created
	// (as docker's is for an image that no node has), its tasks are
	// rejected, and the converging command fails saying why instead of
	// waiting.
	r := m1.cliTimeout(serviceTimeout, "service", "create", "--name", "ghost", "--driver", "process", "--update-monitor", "1s", "--restart-delay", "200ms",
		"no-such-program-flotilla-e2e")
	t.Logf("create of a missing program: after %s: %v\nstdout:\n%s", r.elapsed.Round(time.Millisecond), r.err, r.stdout)
	if r.err == nil {
		t.Errorf("service create of a program that does not exist succeeded")
	} else if !strings.Contains(r.stderr, "no-such-program-flotilla-e2e") || !containsAny(r.stderr, "not found", "no such") {
		t.Errorf("service create of a program that does not exist: unclear error %q", r.stderr)
	}
	if r := m1.cliTimeout(cliTimeout, "service", "rm", "ghost"); r.err != nil {
		t.Errorf("removing ghost: %v", r.err)
	}
	noServices("after ghost")

	// A stale version, through the API with the moby client.
	api, err := client.New(client.WithHost(m1.host()))
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	one := uint64(1)
	created, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "versioned"},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
			Image: "/bin/sleep", Args: []string{"1000"}, Labels: map[string]string{"com.flotilla.driver": "process"}}},
	}})
	if err != nil {
		t.Fatalf("ServiceCreate: %v", err)
	}
	ins, err := api.ServiceInspect(ctx, created.ID, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := ins.Service.Version
	spec := ins.Service.Spec
	spec.Labels = map[string]string{"step": "first"}
	if _, err := api.ServiceUpdate(ctx, created.ID, client.ServiceUpdateOptions{Version: stale, Spec: spec}); err != nil {
		t.Fatalf("first update: %v", err)
	}
	spec.Labels = map[string]string{"step": "stale"}
	_, err = api.ServiceUpdate(ctx, created.ID, client.ServiceUpdateOptions{Version: stale, Spec: spec})
	if err == nil {
		t.Fatal("an update with a stale version succeeded")
	}
	t.Logf("stale update: %v", err)
	if !containsAny(err.Error(), "version", "out of sequence") {
		t.Errorf("the stale update's error does not mention the version: %v", err)
	}
	ins, err = api.ServiceInspect(ctx, created.ID, client.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ins.Service.Spec.Labels["step"]; got != "first" {
		t.Errorf("after the stale update the label is %q, want first (unchanged)", got)
	}
	if ins.Service.Version.Index <= stale.Index {
		t.Errorf("version %d after one update from %d", ins.Service.Version.Index, stale.Index)
	}
	if _, err := api.ServiceRemove(ctx, created.ID, client.ServiceRemoveOptions{}); err != nil {
		t.Errorf("ServiceRemove: %v", err)
	}
	noServices("after the stale update")
}
