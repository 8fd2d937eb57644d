package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/agent/driver/fake"
	"github.com/flotilla-org/flotilla/internal/sandbox"
	"github.com/flotilla-org/flotilla/security/ca"
)

// ConvergeOptions configures RunConverge.
type ConvergeOptions struct {
	Binary   string
	Dir      string
	Nodes    int
	Replicas int
	// Heartbeat is the nodes' heartbeat period for the run (0: the
	// default). The simulated nodes share this machine's CPU with the
	// managers, which real nodes do not; a longer period keeps the
	// measurement about scheduling, not heartbeat load.
	Heartbeat time.Duration
	// DaemonArgs are extra flags for the manager daemons.
	DaemonArgs []string
	// Timeout bounds the wait for the nodes to be ready, and then for
	// convergence (0: 10 minutes each).
	Timeout time.Duration
	Out     io.Writer
}

// ConvergeResult is what one convergence run measured.
type ConvergeResult struct {
	JoinTime time.Duration // all simulated nodes joined and Ready
	Converge time.Duration // service create → every replica running
	// LeaderIdle is the leader's memory before any node joined (3
	// managers, no service); Leader after convergence.
	LeaderIdle, Leader memSample
	// HeartbeatsPerSecond is the rate the leader took node heartbeats
	// while converging.
	HeartbeatsPerSecond float64
	// RaftBytesPerTask is what the leader proposed to Raft while
	// converging (creation, placement, status reports), per task.
	RaftBytesPerTask float64
	// Steady is the leader's load after convergence, the cluster quiet.
	Steady steadySample
	// CPU is the CPU time used from service create to convergence: this
	// process (the simulated nodes) first, then each manager.
	CPU []time.Duration
}

func cpuLine(used []time.Duration, mgrs []sandbox.Node) string {
	var total time.Duration
	parts := []string{}
	for i, u := range used {
		total += u
		name := "simulated nodes"
		if i > 0 {
			name = mgrs[i-1].Name
		}
		parts = append(parts, fmt.Sprintf("%s %.1fs", name, u.Seconds()))
	}
	return fmt.Sprintf("%.1fs in all (%s)", total.Seconds(), strings.Join(parts, ", "))
}

// RunConverge starts 3 manager processes on loopback, joins Nodes simulated
// workers (fake driver) from this process, creates a service of Replicas
// tasks and measures until all of them run.
func RunConverge(ctx context.Context, o ConvergeOptions) (ConvergeResult, error) {
	var res ConvergeResult
	sb, err := sandbox.Up(ctx, sandbox.Options{Dir: o.Dir, Managers: 3, Binary: o.Binary, DaemonArgs: o.DaemonArgs, Out: io.Discard, Timeout: 2 * time.Minute})
	if err != nil {
		return res, err
	}
	defer sandbox.Down(o.Dir)
	mgrs := sb.Managers()
	api, err := client.New(client.WithHost(mgrs[0].Host))
	if err != nil {
		return res, err
	}
	defer api.Close()
	sw, err := api.SwarmInspect(ctx, client.SwarmInspectOptions{})
	if err != nil {
		return res, err
	}
	if o.Heartbeat > 0 {
		spec := sw.Swarm.Spec
		spec.Dispatcher.HeartbeatPeriod = o.Heartbeat
		if _, err := api.SwarmUpdate(ctx, client.SwarmUpdateOptions{Version: sw.Swarm.Version, Spec: spec}); err != nil {
			return res, err
		}
	}
	root, err := ca.ParseRootCA([]byte(sw.Swarm.TLSInfo.TrustRoot), nil)
	if err != nil {
		return res, err
	}
	if l, err := leader(ctx, mgrs, api); err == nil {
		if res.LeaderIdle, err = sampleMemory(ctx, l); err != nil {
			return res, err
		}
		progress(o.Out, "idle leader (%s, no nodes, no services): %v\n", l.Name, res.LeaderIdle)
	}
	var addrs []string
	for _, m := range mgrs {
		addrs = append(addrs, m.SwarmAddr)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	drv := fake.New()
	nctx, stopNodes := context.WithCancel(ctx)
	defer stopNodes()
	t0 := time.Now()
	clock := newTaskClock()
	nodes := make([]*simNode, o.Nodes)
	sem := make(chan struct{}, 32)
	// Each node starts its session once joined, as a real node does: the
	// sessions of a slow join do not all start in one instant.
	var swg sync.WaitGroup
	defer swg.Wait()
	defer stopNodes()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var joinErr error
	for i := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n, err := joinSimNode(ctx, fmt.Sprintf("sim-%04d", i+1), sw.Swarm.JoinTokens.Worker, root, addrs, i, drv, clock, log)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				joinErr = err
				return
			}
			nodes[i] = n
			swg.Add(1)
			go func() { defer swg.Done(); n.session.Run(nctx) }()
		}()
	}
	wg.Wait()
	if joinErr != nil {
		return res, joinErr
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	period := o.Heartbeat
	if period <= 0 {
		period = time.Second
	}
	go watchSessions(nctx, nodes, 10*time.Second, 2*period, o.Out)
	if err := poll(ctx, o.Timeout, func() error { return readyCount(ctx, api, o.Nodes+3) }); err != nil {
		return res, fmt.Errorf("simulated nodes did not all become ready: %w", err)
	}
	res.JoinTime = time.Since(t0)
	progress(o.Out, "%d simulated nodes joined and ready in %v\n", o.Nodes, res.JoinTime.Round(time.Millisecond))
	// Wait for a beat after joining, so the join storm's TLS handshakes
	// are not counted as convergence.
	settled := time.Now()
	if err := poll(ctx, 2*time.Minute, func() error { return beatSince(nodes, settled) }); err != nil {
		return res, err
	}
	// Nodes whose beats timed out in the join storm moved to another
	// manager; the connections they left close after the nodes' idle
	// timeout (10 s). Converging before that would count them.
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(settleIdle):
	}
	progress(o.Out, "node sessions per manager: %s\n", sessionSpread(nodes))

	replicas := uint64(o.Replicas)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "converge"},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "fake",
			Labels: map[string]string{"com.flotilla.driver": "fake"}}},
	}
	pids := []int{0}
	for _, m := range mgrs {
		pids = append(pids, m.PID)
	}
	lead, err := leader(ctx, mgrs, api)
	if err != nil {
		return res, err
	}
	work0, err := countWork(ctx, lead)
	if err != nil {
		return res, err
	}
	waits0 := readWaits(ctx, mgrs)
	meter := newCPUMeter(pids...)
	t1 := time.Now()
	if _, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec}); err != nil {
		return res, err
	}
	err = waitRunning(ctx, api, o.Replicas, 1000, o.Timeout, t1, o.Out)
	if err != nil {
		return res, err
	}
	seen := time.Since(t1)
	res.CPU = meter.used()
	// The count is polled no faster than it takes (waitRunning), up to a
	// second or two apart during the wave: the time is when the last
	// running report was written (its task's UpdatedAt, the leader's
	// clock on this machine), not when the poll saw it.
	tl, tlErr := api.TaskList(ctx, client.TaskListOptions{})
	res.Converge = seen
	if tlErr == nil {
		if last := lastRunningWrite(tl.Items); !last.IsZero() && last.Sub(t1) < seen {
			res.Converge = last.Sub(t1)
		}
	}
	progress(o.Out, "all running in the store after %.3fs (the bench's poll saw it after %.3fs)\n", res.Converge.Seconds(), seen.Seconds())
	progress(o.Out, "CPU used while converging: %s\n", cpuLine(res.CPU, mgrs))
	progress(o.Out, "waits while converging:\n")
	printWaits(o.Out, waits0, readWaits(ctx, mgrs), mgrs)
	if work, err := countWork(ctx, lead); err != nil {
		progress(o.Out, "no figures of the leader's work while converging: %v\n", err)
	} else {
		res.HeartbeatsPerSecond = (work.heartbeats - work0.heartbeats) / time.Since(t1).Seconds()
		progress(o.Out, "the leader (%s) while converging: %.0f heartbeats/s; %.0f orchestrator passes, %.2fs in all; %.0f task status reports (%.2f per task)\n",
			lead.Name, res.HeartbeatsPerSecond, work.passes-work0.passes, work.passSeconds-work0.passSeconds,
			work.statuses-work0.statuses, (work.statuses-work0.statuses)/float64(o.Replicas))
		res.RaftBytesPerTask = (work.raftBytes - work0.raftBytes) / float64(o.Replicas)
		progress(o.Out, "Raft log written while converging: %.0f entries, %.1f MiB, %.0f bytes per task (each sent to every follower)\n",
			work.raftEntries-work0.raftEntries, (work.raftBytes-work0.raftBytes)/(1<<20), res.RaftBytesPerTask)
	}
	if l, err := leader(ctx, mgrs, api); err == nil {
		if res.Leader, err = sampleMemory(ctx, l); err != nil {
			return res, err
		}
		progress(o.Out, "leader (%s) after convergence: %v\n", l.Name, res.Leader)
	}
	if tlErr == nil {
		printPhases(o.Out, clock.phases(t1, tl.Items, res.Converge))
		printDeliveredBy(o.Out, clock.deliveredBy(t1), mgrs, lead)
		answers, carried := clock.answerCount()
		progress(o.Out, "assignment answers to the nodes: %d, carrying %d tasks\n", answers, carried)
		if extra := len(tl.Items) - o.Replicas; extra > 0 {
			// Replacements: nodes marked down, tasks failed or moved.
			byState := map[string]int{}
			for _, t := range tl.Items {
				if t.DesiredState != swarm.TaskStateRunning {
					byState[fmt.Sprintf("%s/%s (%s)", t.Status.State, t.DesiredState, t.Status.Message)]++
				}
			}
			progress(o.Out, "%d tasks were made in all, %d more than the replicas: %v\n", len(tl.Items), extra, byState)
		}
	}
	progress(o.Out, "node sessions per manager after convergence: %s\n", sessionSpread(nodes))
	res.Steady = steadyLoad(ctx, lead, o.Out)
	if err := ctx.Err(); err != nil {
		// Interrupted (Ctrl-C): the figures after it are not measured.
		return res, fmt.Errorf("interrupted before the run ended: %w", err)
	}
	return res, nil
}

// steadyWindow is how long the converged cluster is watched: at least two
// heartbeat periods at swarm's 5 s.
const steadyWindow = 10 * time.Second

// steadyLoad measures the leader once the cluster is converged and quiet:
// the heartbeats it takes and the CPU it uses for them (and for anything
// else it does meanwhile, so the CPU per heartbeat is an upper bound).
func steadyLoad(ctx context.Context, lead sandbox.Node, out io.Writer) (s steadySample) {
	w0, err := countWork(ctx, lead)
	if err != nil {
		progress(out, "no steady-state figures: %v\n", err)
		return s
	}
	meter, t0 := newCPUMeter(lead.PID), time.Now()
	select {
	case <-ctx.Done():
		return s
	case <-time.After(steadyWindow):
	}
	w1, err := countWork(ctx, lead)
	if err != nil {
		progress(out, "no steady-state figures: %v\n", err)
		return s
	}
	took := time.Since(t0).Seconds()
	s.HeartbeatsPerSecond = (w1.heartbeats - w0.heartbeats) / took
	s.CPUShare = meter.used()[0].Seconds() / took
	if s.HeartbeatsPerSecond > 0 {
		s.CPUPerHeartbeat = time.Duration(s.CPUShare / s.HeartbeatsPerSecond * float64(time.Second))
	}
	progress(out, "steady state, %v on the leader (%s): %.0f heartbeats/s, %.1f%% of a core, at most %v of CPU per heartbeat\n",
		steadyWindow, lead.Name, s.HeartbeatsPerSecond, 100*s.CPUShare, s.CPUPerHeartbeat.Round(time.Microsecond))
	// Resident memory right after convergence still holds the wave's
	// garbage; Go hands freed pages back to the system over minutes.
	if m, err := sampleMemory(ctx, lead); err == nil {
		s.Memory = m
		progress(out, "leader (%s) at the end of the steady window: %v\n", lead.Name, m)
	}
	return s
}

// steadySample is the leader's load once converged.
type steadySample struct {
	HeartbeatsPerSecond float64
	CPUShare            float64 // of one core
	CPUPerHeartbeat     time.Duration
	Memory              memSample // at the end of the window
}

// settleIdle is how long the nodes are left alone after joining: longer
// than the node client's idle-connection timeout.
const settleIdle = 12 * time.Second

// sessionSpread says how many nodes talk to each manager.
func sessionSpread(nodes []*simNode) string {
	count := map[string]int{}
	for _, n := range nodes {
		_, mgr, _ := n.session.Status()
		count[mgr]++
	}
	addrs := slices.Sorted(maps.Keys(count))
	parts := make([]string, 0, len(addrs))
	for _, a := range addrs {
		parts = append(parts, fmt.Sprintf("%s %d", a, count[a]))
	}
	return strings.Join(parts, ", ")
}

func beatSince(nodes []*simNode, t time.Time) error {
	late := 0
	for _, n := range nodes {
		if ok, _, _ := n.session.Status(); ok.Before(t) {
			late++
		}
	}
	if late > 0 {
		return fmt.Errorf("%d nodes have not beaten since they settled", late)
	}
	return nil
}

func progress(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

func readyCount(ctx context.Context, api *client.Client, want int) error {
	res, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return err
	}
	ready := 0
	for _, n := range res.Items {
		if n.Status.State == swarm.NodeStateReady {
			ready++
		}
	}
	if ready < want {
		return fmt.Errorf("%d of %d nodes ready", ready, want)
	}
	return nil
}

// waitRunning waits until api reports want tasks running, printing
// progress every step tasks (timed from t0).
func waitRunning(ctx context.Context, api *client.Client, want, step int, timeout time.Duration, t0 time.Time, out io.Writer) error {
	last := -1
	return poll(ctx, timeout, func() (err error) {
		began := time.Now()
		// Counting reads every task on the leader: at 50,000 tasks, asked
		// every 20 ms it took a fifth of the leader's CPU from the run it
		// measures. Waiting twice as long as the last count took, before
		// the next, bounds that to a third of a core.
		defer func() {
			if err != nil {
				sleepCtx(ctx, 2*time.Since(began))
			}
		}()
		n, err := runningTasks(ctx, api)
		if err != nil {
			return err
		}
		if n/step != last/step {
			progress(out, "  %6d running after %v\n", n, time.Since(t0).Round(time.Millisecond))
			last = n
		}
		if n < want {
			return fmt.Errorf("%d of %d running", n, want)
		}
		return nil
	})
}

// lastRunningWrite is when the last of the running tasks had its running
// report written: the latest UpdatedAt among them.
func lastRunningWrite(tasks []swarm.Task) time.Time {
	var last time.Time
	for _, t := range tasks {
		if t.Status.State == swarm.TaskStateRunning && t.UpdatedAt.After(last) {
			last = t.UpdatedAt
		}
	}
	return last
}

func runningTasks(ctx context.Context, api *client.Client) (int, error) {
	res, err := api.ServiceList(ctx, client.ServiceListOptions{Status: true})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range res.Items {
		if s.ServiceStatus != nil {
			n += int(s.ServiceStatus.RunningTasks)
		}
	}
	return n, nil
}

func procMem(pid int, key string) int64 {
	return procField(fmt.Sprintf("/proc/%d/status", pid), key)
}

// procField reads a "Key: N kB" line of a /proc file, in bytes.
func procField(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
