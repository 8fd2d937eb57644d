package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
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
	Out        io.Writer
}

// ConvergeResult is what one convergence run measured.
type ConvergeResult struct {
	JoinTime     time.Duration // all simulated nodes joined and Ready
	Converge     time.Duration // service create → every replica running
	LeaderRSS    int64         // bytes, after convergence
	LeaderPeak   int64         // peak RSS (VmHWM) of the leader
	RaftLogBytes int64
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
	var addrs []string
	for _, m := range mgrs {
		addrs = append(addrs, m.SwarmAddr)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	drv := fake.New()
	nctx, stopNodes := context.WithCancel(ctx)
	defer stopNodes()
	t0 := time.Now()
	nodes := make([]*simNode, o.Nodes)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var joinErr error
	for i := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n, err := joinSimNode(ctx, fmt.Sprintf("sim-%04d", i+1), sw.Swarm.JoinTokens.Worker, root, addrs, i, drv, log)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				joinErr = err
				return
			}
			nodes[i] = n
		}()
	}
	wg.Wait()
	if joinErr != nil {
		return res, joinErr
	}
	var swg sync.WaitGroup
	for _, n := range nodes {
		swg.Add(1)
		go func() { defer swg.Done(); n.session.Run(nctx) }()
	}
	defer swg.Wait()
	defer stopNodes()
	if err := poll(ctx, 5*time.Minute, func() error { return readyCount(ctx, api, o.Nodes+3) }); err != nil {
		return res, fmt.Errorf("simulated nodes did not all become ready: %w", err)
	}
	res.JoinTime = time.Since(t0)
	progress(o.Out, "%d simulated nodes joined and ready in %v\n", o.Nodes, res.JoinTime.Round(time.Millisecond))
	// Nodes first talk to the manager they joined through and move to the
	// leader when a heartbeat names it; wait for that, and for a beat over
	// the new connection, so the join storm's TLS handshakes are not
	// counted as convergence.
	if err := poll(ctx, 2*time.Minute, func() error { return sessionsOnLeader(ctx, api, nodes) }); err != nil {
		return res, fmt.Errorf("simulated nodes did not settle on the leader: %w", err)
	}
	settled := time.Now()
	if err := poll(ctx, 2*time.Minute, func() error { return beatSince(nodes, settled) }); err != nil {
		return res, err
	}

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
	meter := newCPUMeter(pids...)
	t1 := time.Now()
	if _, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec}); err != nil {
		return res, err
	}
	err = waitRunning(ctx, api, o.Replicas, 1000, t1, o.Out)
	if err != nil {
		return res, err
	}
	res.Converge = time.Since(t1)
	res.CPU = meter.used()
	progress(o.Out, "CPU used while converging: %s\n", cpuLine(res.CPU, mgrs))
	res.LeaderRSS, res.LeaderPeak = leaderMemory(ctx, mgrs, api)
	if tl, err := api.TaskList(ctx, client.TaskListOptions{}); err == nil {
		var created, running []time.Duration
		for _, t := range tl.Items {
			created = append(created, t.CreatedAt.Sub(t1))
			if t.Status.State == swarm.TaskStateRunning {
				running = append(running, t.Status.Timestamp.Sub(t1))
			}
		}
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
		cm, cw := Summary(created)
		rm, rw := Summary(running)
		progress(o.Out, "tasks created: median %v, last %v; running: median %v, last %v (after service create)\n",
			cm.Round(time.Millisecond), cw.Round(time.Millisecond), rm.Round(time.Millisecond), rw.Round(time.Millisecond))
	}
	return res, nil
}

func sessionsOnLeader(ctx context.Context, api *client.Client, nodes []*simNode) error {
	res, err := api.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return err
	}
	leader := ""
	for _, n := range res.Items {
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			leader = n.ManagerStatus.Addr
		}
	}
	if leader == "" {
		return fmt.Errorf("no leader")
	}
	off := 0
	for _, n := range nodes {
		if _, mgr, _ := n.session.Status(); mgr != leader {
			off++
		}
	}
	if off > 0 {
		return fmt.Errorf("%d nodes not yet on the leader %s", off, leader)
	}
	return nil
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
func waitRunning(ctx context.Context, api *client.Client, want, step int, t0 time.Time, out io.Writer) error {
	last := -1
	return poll(ctx, 10*time.Minute, func() error {
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

// leaderMemory reads the leader process's resident and peak memory.
// It waits a little for a leader: there may be an election under way.
func leaderMemory(ctx context.Context, mgrs []sandbox.Node, api *client.Client) (rss, peak int64) {
	_ = poll(ctx, 10*time.Second, func() error {
		res, err := api.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return err
		}
		for _, n := range res.Items {
			if n.ManagerStatus == nil || !n.ManagerStatus.Leader {
				continue
			}
			for _, m := range mgrs {
				if m.Name == n.Description.Hostname {
					rss, peak = procMem(m.PID, "VmRSS:"), procMem(m.PID, "VmHWM:")
					return nil
				}
			}
		}
		return fmt.Errorf("no leader")
	})
	return rss, peak
}

func procMem(pid int, key string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
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
