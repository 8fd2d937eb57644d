package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/hostsim"
	"github.com/flotilla-org/flotilla/internal/sandbox"
	"github.com/flotilla-org/flotilla/manager/scheduler"
)

// MeshOptions configures RunMesh.
type MeshOptions struct {
	Binary   string
	Dir      string
	Clients  int
	Duration time.Duration
	Rounds   int // task deaths timed
	// Hosts runs the two nodes on separate hosts (network namespaces made
	// for the run, internal/hostsim) with --mesh-kernel-between-nodes;
	// the load comes from this machine's own namespace.
	Hosts bool
	// Repeat measures each path this many times, in turn; the median is
	// the result.
	Repeat int
	Out    io.Writer
}

// MeshResult compares the same requests sent to a task directly, through
// the mesh of the task's own node, and through another node's mesh (a
// relay over the cluster port).
type MeshResult struct {
	Direct, Local, Relay             LoadResult
	BulkDirect, BulkLocal, BulkRelay float64 // bytes/s
	// Rotation is, per task killed, the time until the managers' routing
	// table dropped it; Failed counts requests that failed meanwhile.
	Rotation []time.Duration
	Failed   int
}

// RunMesh starts a manager and a worker, runs the benchmark's backend as
// a process-driver task on the worker, published on a port, and loads it
// three ways. Then it kills tasks and times their removal from rotation
// while a client keeps sending requests.
func RunMesh(ctx context.Context, o MeshOptions) (MeshResult, error) {
	var res MeshResult
	sbo := sandbox.Options{Dir: o.Dir, Managers: 1, Workers: 1, Binary: o.Binary, Out: io.Discard, Timeout: 2 * time.Minute}
	env := []string{"BENCH_ADDR_FILE=" + filepath.Join(o.Dir, "backend-addrs")}
	if o.Hosts {
		hn, err := hostsim.New(fmt.Sprintf("fbm-%d-", os.Getpid()), fmt.Sprintf("fbm%d", os.Getpid()), 2)
		if err != nil {
			return res, err
		}
		defer func() {
			if err := hn.Close(); err != nil {
				progress(o.Out, "removing the hosts: %v\n", err)
			}
		}()
		for i, a := range hn.Addrs {
			sbo.Hosts = append(sbo.Hosts, sandbox.Host{Exec: hn.Exec(i), Addr: a})
		}
		sbo.DaemonArgs = []string{"--no-docker", "--mesh-kernel-between-nodes"}
		// The task listens on every address of its host, so this
		// machine reaches it directly too.
		env = append(env, "BENCH_LISTEN_HOST="+hn.Addrs[1])
	}
	sb, err := sandbox.Up(ctx, sbo)
	if err != nil {
		return res, err
	}
	defer sandbox.Down(o.Dir)
	mgr, wrk := sb.Nodes[0], sb.Nodes[1]
	api, err := client.New(client.WithHost(mgr.Host))
	if err != nil {
		return res, err
	}
	defer api.Close()
	port, err := freeTCPPort()
	if err != nil {
		return res, err
	}
	addrFile := filepath.Join(o.Dir, "backend-addrs")
	one := uint64(1)
	if o.Hosts {
		port = 8080 // the hosts' port spaces are the run's own
	}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "bench-mesh"},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: o.Binary, Args: []string{"bench", "backend"},
				Env: env, Labels: map[string]string{scheduler.DriverLabel: "process"}},
			Placement: &swarm.Placement{Constraints: []string{"node.role==worker"}},
		},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: uint32(port)}}},
	}
	created, err := api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		return res, err
	}
	direct := ""
	local := fmt.Sprintf("http://%s/", net.JoinHostPort(wrk.PublishHost, strconv.Itoa(port)))
	relay := fmt.Sprintf("http://%s/", net.JoinHostPort(mgr.PublishHost, strconv.Itoa(port)))
	if err := poll(ctx, time.Minute, func() error {
		tasks, err := backendAddrs(addrFile)
		if err != nil || len(tasks) == 0 {
			return fmt.Errorf("the backend task has not started: %v", err)
		}
		for _, a := range tasks {
			direct = "http://" + a.addr + "/"
		}
		for _, u := range []string{direct, local, relay} {
			if _, err := taskOf(ctx, u); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return res, err
	}
	progress(o.Out, "backend task on %s; published port %d on %s (its node) and %s (relayed)\n", wrk.Name, port, wrk.PublishHost, mgr.PublishHost)

	// The paths are measured in turn, Repeat times: a noisy moment then
	// hits each of them alike, and the median of each is reported.
	paths := []struct {
		name  string
		url   string
		r     *LoadResult
		bulk  *float64
		runs  []LoadResult
		bulks []float64
	}{{name: "direct", url: direct, r: &res.Direct, bulk: &res.BulkDirect}, {name: "mesh, same node", url: local, r: &res.Local, bulk: &res.BulkLocal},
		{name: relayName(o.Hosts), url: relay, r: &res.Relay, bulk: &res.BulkRelay}}
	for range max(o.Repeat, 1) {
		for i := range paths {
			c := &paths[i]
			httpLoad(ctx, c.url, o.Clients, time.Second) // warm up connections and caches
			r := httpLoad(ctx, c.url, o.Clients, o.Duration)
			b, err := bulkRate(ctx, c.url+"bulk", o.Duration)
			if err != nil {
				return res, fmt.Errorf("bulk %s: %w", c.name, err)
			}
			c.runs, c.bulks = append(c.runs, r), append(c.bulks, b)
			progress(o.Out, "%-16s %s  bulk %6.0f MiB/s\n", c.name, r, b/(1<<20))
		}
	}
	for _, c := range paths {
		slices.SortFunc(c.runs, func(a, b LoadResult) int { return cmp.Compare(a.Rate, b.Rate) })
		slices.Sort(c.bulks)
		*c.r, *c.bulk = c.runs[len(c.runs)/2], c.bulks[len(c.bulks)/2]
	}

	// Task deaths: two replicas, kill -9 one, keep a client busy through
	// the relayed port, and time the managers' table dropping the task.
	two := uint64(2)
	for round := range o.Rounds {
		svc, err := api.ServiceInspect(ctx, created.ID, client.ServiceInspectOptions{})
		if err != nil {
			return res, err
		}
		s := svc.Service.Spec
		s.Mode.Replicated.Replicas = &two
		if _, err := api.ServiceUpdate(ctx, created.ID, client.ServiceUpdateOptions{Version: svc.Service.Version, Spec: s}); err != nil {
			return res, err
		}
		var victim backendTask
		if err := poll(ctx, time.Minute, func() error {
			running, err := runningTaskIDs(ctx, api, created.ID)
			if err != nil || len(running) < 2 {
				return fmt.Errorf("waiting for 2 running tasks: %v", err)
			}
			all, err := backendAddrs(addrFile)
			if err != nil {
				return err
			}
			for _, a := range all {
				if running[a.task] && a.pid > 0 {
					victim = a
					return nil
				}
			}
			return fmt.Errorf("no running task wrote its address yet")
		}); err != nil {
			return res, err
		}
		stop := make(chan struct{})
		failed := make(chan int)
		go func() {
			n := 0
			for {
				select {
				case <-stop:
					failed <- n
					return
				default:
				}
				if _, err := taskOf(ctx, relay); err != nil {
					n++
				}
			}
		}()
		t0 := time.Now()
		_ = syscall.Kill(victim.pid, syscall.SIGKILL)
		err = poll(ctx, time.Minute, func() error {
			running, err := runningTaskIDs(ctx, api, created.ID)
			if err != nil {
				return err
			}
			if running[victim.task] {
				return fmt.Errorf("task %s still in rotation", victim.task)
			}
			return nil
		})
		took := time.Since(t0)
		close(stop)
		res.Failed += <-failed
		if err != nil {
			return res, err
		}
		res.Rotation = append(res.Rotation, took)
		progress(o.Out, "round %d: killed task %s; out of rotation after %v\n", round+1, victim.task, took.Round(time.Millisecond))
	}
	return res, nil
}

type backendTask struct {
	task, addr string
	pid        int
}

// backendAddrs reads the "TASK ADDR PID" lines the backend tasks wrote.
func backendAddrs(path string) ([]backendTask, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []backendTask
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) == 3 {
			pid, _ := strconv.Atoi(fs[2])
			out = append(out, backendTask{task: fs[0], addr: fs[1], pid: pid})
		}
	}
	return out, sc.Err()
}

// taskOf sends one request and returns the task that answered.
func taskOf(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Close = true
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, res.Status)
	}
	return res.Header.Get("X-Task"), nil
}

// runningTaskIDs lists the service's tasks that run and are meant to.
func runningTaskIDs(ctx context.Context, api *client.Client, serviceID string) (map[string]bool, error) {
	res, err := api.TaskList(ctx, client.TaskListOptions{Filters: client.Filters{}.Add("service", serviceID)})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, t := range res.Items {
		if t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning {
			out[t.ID] = true
		}
	}
	return out, nil
}

func freeTCPPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// relayName names the path through the other node's published port.
func relayName(hosts bool) string {
	if hosts {
		return "mesh, other node"
	}
	return "mesh, relayed"
}
