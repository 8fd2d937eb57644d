package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/moby/moby/api/types/swarm"
)

// Durability run parameters. FLOTILLA_DURABILITY_DURATION (a Go duration)
// makes a longer run than CI's default.
const (
	durabilityDefault = 35 * time.Second
	durabilityClients = 6
	durabilityKeys    = 4
	// checkTimeout bounds the linearizability search; per-key partitions
	// normally finish in well under a second.
	checkTimeout = 2 * time.Minute
)

// TestDurability runs concurrent clients that create, update (with the
// version they read, as `docker service update` does) and remove services
// and read them, through all three managers, while a fault injector kills
// managers with SIGKILL and restarts them on their data dirs, pauses them
// with SIGSTOP, and now and then takes a majority away. The recorded
// history must be linearizable (porcupine) with unknown outcomes treated
// as possibly applied; after the faults, the three replicas agree with
// each other and with the history: no acknowledged write is lost.
func TestDurability(t *testing.T) {
	duration := durabilityDefault
	if s := os.Getenv("FLOTILLA_DURABILITY_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("FLOTILLA_DURABILITY_DURATION=%q: %v", s, err)
		}
		duration = d
	}
	c := newClusterArgs(t, 3, 0, "--no-docker")
	// Long runs spread over more keys, so that each key's history (and the
	// writes of unknown outcome left open in it) stays small enough to check.
	keys := make([]string, durabilityKeys*max(1, int(duration/durabilityDefault)))
	for i := range keys {
		keys[i] = fmt.Sprintf("dur-k%d", i)
	}
	h := newHistory()
	var anomalies atomic.Int64
	anomaly := func(format string, args ...any) {
		if anomalies.Add(1) <= 20 {
			t.Errorf("anomaly: "+format, args...)
		}
	}
	var nextID atomic.Int64
	probe := newDurabilityClient(-1, &nextID, []string{"dur-quorum"}, c.managers, h, anomaly)
	faults := newFaultInjector(t, c.managers, probe)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range durabilityClients {
		cl := newDurabilityClient(i, &nextID, keys, c.managers, h, anomaly)
		wg.Go(func() {
			// Pacing: at most one operation per 10 ms per client, so a
			// client facing a dead socket does not spin.
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					cl.step()
				}
			}
		})
	}
	injected := make(chan struct{})
	go func() {
		defer close(injected)
		faults.run(stop)
	}()
	timer := time.NewTimer(duration)
	<-timer.C
	close(stop)
	wg.Wait()
	<-injected
	faultTime := time.Since(h.start)

	// Healed: every replica converges to the same services, and a read of
	// each key through each manager joins the history.
	final := waitReplicasAgree(t, c.managers, append([]string{probe.keys[0]}, keys...))
	finalClient := newDurabilityClient(-2, &nextID, keys, c.managers, h, anomaly)
	for _, m := range c.managers {
		for _, k := range append([]string{probe.keys[0]}, keys...) {
			out, ok := finalClient.read(m, k)
			if !ok {
				t.Errorf("final read of %s via %s failed", k, m)
				continue
			}
			want, exists := final[k]
			if out.exists != exists || out.exists && (out.value != want.Spec.Labels[durabilityLabel] || out.version != want.Version.Index) {
				t.Errorf("final read of %s via %s gives %+v, the replicas hold %s", k, m, out, describeService(want, exists))
			}
		}
	}

	ops := h.snapshot()
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(serviceModel, ops, checkTimeout)
	checkTook := time.Since(checkStart)
	t.Logf("durability: %s of faults, %d clients on %d keys: writes %d ok, %d failed, %d unknown outcome, %d refused for no leader, %d to a dead daemon; reads %d answered, %d marked stale (no confirmed leader, not checked), %d not answered; faults: %d kill -9, %d SIGSTOP, %d restarts, %d majority losses (%d probe writes); linearizability check %s in %s",
		faultTime.Round(time.Second), durabilityClients, len(keys), h.ok, h.failed, h.unknown, h.noLeader, h.dialFailed,
		h.reads, h.staleReads, h.readErrs, faults.kills, faults.pauses, faults.restarts, faults.majorityLosses, faults.probes,
		res, checkTook.Round(time.Millisecond))
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("flotilla-durability-%s.html", time.Now().Format("20060102-150405")))
		if err := porcupine.VisualizePath(serviceModel, info, path); err != nil {
			t.Errorf("writing the visualization: %v", err)
		}
		t.Errorf("the history of %d operations is not linearizable: see %s (open it in a browser); where it breaks:\n%s",
			len(ops), path, explainIllegal(info, ops, h.start))
	default:
		t.Errorf("the linearizability check gave no answer within %s (%d operations)", checkTimeout, len(ops))
	}
	if h.ok == 0 || faults.kills == 0 || faults.pauses == 0 || faults.majorityLosses == 0 {
		t.Errorf("the run covered too little: %d acknowledged writes, %d kills, %d pauses, %d majority losses", h.ok, faults.kills, faults.pauses, faults.majorityLosses)
	}
}

func describeService(s swarm.Service, exists bool) string {
	if !exists {
		return "absent"
	}
	return fmt.Sprintf("%s@%d", s.Spec.Labels[durabilityLabel], s.Version.Index)
}

// localServices lists the services in m's own replica. The header is the
// one a manager sets on a request it forwards; a GET carrying it is
// answered locally rather than forwarded to the leader.
func localServices(m *node) (map[string]swarm.Service, error) {
	req, err := http.NewRequest(http.MethodGet, "http://flotilla/services", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Flotilla-Forwarded", "1")
	res, err := apiClient(m, 5*time.Second).Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var list []swarm.Service
	if err := json.NewDecoder(res.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("GET /services on %s: %s: %v", m, res.Status, err)
	}
	out := map[string]swarm.Service{}
	for _, s := range list {
		if _, dup := out[s.Spec.Name]; dup {
			return nil, fmt.Errorf("%s holds two services named %s", m, s.Spec.Name)
		}
		out[s.Spec.Name] = s
	}
	return out, nil
}

// waitReplicasAgree waits until every manager's replica holds the same
// services (name, label value, version) for the keys, and returns them.
func waitReplicasAgree(t *testing.T, managers []*node, keys []string) map[string]swarm.Service {
	t.Helper()
	var first map[string]swarm.Service
	eventually(t, convergeTimeout, func() error {
		var views []string
		for i, m := range managers {
			svcs, err := localServices(m)
			if err != nil {
				return err
			}
			var parts []string
			for _, k := range keys {
				s, ok := svcs[k]
				parts = append(parts, k+"="+describeService(s, ok))
			}
			sort.Strings(parts)
			views = append(views, strings.Join(parts, " "))
			if i == 0 {
				first = svcs
			}
		}
		for i := range views {
			if views[i] != views[0] {
				return fmt.Errorf("replicas differ: %s: %s; %s: %s", managers[0], views[0], managers[i], views[i])
			}
		}
		return nil
	})
	return first
}
