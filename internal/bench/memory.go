package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/sandbox"
)

// memSample is a manager's memory at one moment.
type memSample struct {
	RSS  int64 // resident, as found (before the collection below)
	Anon int64 // of which anonymous memory (RssAnon; the rest is mostly the binary's pages)
	// PSS is the resident memory with pages shared with other processes
	// (the binary's, mapped by all three managers) divided among them.
	PSS  int64
	Peak int64 // peak resident (VmHWM) so far
	// After a forced garbage collection that gives the freed pages back
	// (GET /metrics?gc=1 on the API socket): the live heap's spans, and
	// the resident memory.
	HeapInuse  int64
	StackInuse int64 // goroutine stacks
	RSSAfterGC int64
	Goroutines int64
}

func (m memSample) String() string {
	mib := func(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	return fmt.Sprintf("%s resident (%s anonymous, %s proportional; %s after GC and release; peak %s), after GC heap in use %s, stacks %s (%d goroutines)",
		mib(m.RSS), mib(m.Anon), mib(m.PSS), mib(m.RSSAfterGC), mib(m.Peak), mib(m.HeapInuse), mib(m.StackInuse), m.Goroutines)
}

// leader returns the manager that leads. It waits a little for one:
// there may be an election under way.
func leader(ctx context.Context, mgrs []sandbox.Node, api *client.Client) (sandbox.Node, error) {
	var found sandbox.Node
	err := poll(ctx, 10*time.Second, func() error {
		res, err := api.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return err
		}
		var ok bool
		if found, ok = leaderIn(mgrs, res.Items); !ok {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return found, err
}

// sampleMemory reads a manager's memory: /proc for the resident size as
// it is, then its metrics after a forced collection.
func sampleMemory(ctx context.Context, m sandbox.Node) (memSample, error) {
	s := memSample{RSS: procMem(m.PID, "VmRSS:"), Anon: procMem(m.PID, "RssAnon:"), Peak: procMem(m.PID, "VmHWM:"),
		PSS: procField(fmt.Sprintf("/proc/%d/smaps_rollup", m.PID), "Pss:")}
	v, err := scrape(ctx, m, true)
	s.HeapInuse = int64(v["go_memstats_heap_inuse_bytes"])
	s.RSSAfterGC = int64(v["process_resident_memory_bytes"])
	s.StackInuse = int64(v["go_memstats_stack_inuse_bytes"])
	s.Goroutines = int64(v["go_goroutines"])
	return s, err
}

// scrape reads a manager's metrics from its API socket (gc: after a
// forced garbage collection that gives the freed pages back).
func scrape(ctx context.Context, m sandbox.Node, gc bool) (map[string]float64, error) {
	c := http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", m.Socket)
		}}}
	defer c.CloseIdleConnections()
	path := "http://flotilla/metrics"
	if gc {
		path += "?gc=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: GET /metrics: %s", m.Name, res.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// A series with labels is keyed by its whole name{labels}: the
		// value follows the last space (label values may hold spaces).
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		name, val := line[:i], line[i+1:]
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// leaderCounts are counters of the leader's work.
type leaderCounts struct{ heartbeats, passes, passSeconds, raftEntries, raftBytes, statuses float64 }

func countWork(ctx context.Context, m sandbox.Node) (leaderCounts, error) {
	v, err := scrape(ctx, m, false)
	if err != nil {
		return leaderCounts{}, fmt.Errorf("reading %s's metrics: %w", m.Name, err)
	}
	const pass = "flotilla_orchestrator_pass_duration_seconds" // a histogram: its _count and _sum
	return leaderCounts{v["flotilla_dispatcher_heartbeats_total"], v[pass+"_count"], v[pass+"_sum"],
		v["flotilla_raft_proposed_entries_total"], v["flotilla_raft_proposed_bytes_total"], v["flotilla_dispatcher_task_status_reports_total"]}, nil
}
