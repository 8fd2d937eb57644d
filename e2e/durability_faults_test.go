package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// faultInjector kills (SIGKILL), restarts and pauses (SIGSTOP/SIGCONT)
// managers, one at a time, and now and then a majority for a moment.
type faultInjector struct {
	t        *testing.T
	managers []*node
	rng      *rand.Rand
	probe    *durabilityClient // writes during a majority loss

	mu     sync.Mutex
	paused map[*node]bool

	kills, pauses, restarts, majorityLosses, probes int
}

func newFaultInjector(t *testing.T, managers []*node, probe *durabilityClient) *faultInjector {
	f := &faultInjector{t: t, managers: managers, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		probe: probe, paused: map[*node]bool{}}
	// Runs before the cluster's cleanup (cleanups run last-in first-out):
	// a stopped daemon is continued so that nothing stays stopped, then
	// the cluster kills every daemon.
	t.Cleanup(f.resumeAll)
	return f
}

// run injects faults until stop is closed, then heals the cluster: every
// manager running and continued.
func (f *faultInjector) run(stop <-chan struct{}) {
	defer f.heal()
	for episode := 0; ; episode++ {
		select {
		case <-stop:
			return
		default:
		}
		switch {
		case episode%6 == 4:
			f.loseMajority()
		case f.rng.IntN(2) == 0:
			f.killOne()
		default:
			f.pauseOne()
		}
		f.waitHealthy()
		// Let the clients work on a healthy cluster for a moment between
		// episodes (fault pacing, not a test sleep).
		hold(f.span(300*time.Millisecond, 1200*time.Millisecond), stop)
	}
}

// hold waits d or until stop closes.
func hold(d time.Duration, stop <-chan struct{}) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-stop:
	}
}

func (f *faultInjector) span(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(f.rng.Int64N(int64(hi-lo)))
}

// victim picks a manager, the leader half of the time.
func (f *faultInjector) victim() *node {
	if f.rng.IntN(2) == 0 {
		if l := leaderOf(f.managers); l != nil {
			return l
		}
	}
	return f.managers[f.rng.IntN(len(f.managers))]
}

func (f *faultInjector) killOne() {
	v := f.victim()
	if !f.kill(v) {
		return
	}
	hold(f.span(200*time.Millisecond, 2*time.Second), nil)
	f.restart(v)
}

func (f *faultInjector) pauseOne() {
	v := f.victim()
	if !f.pause(v) {
		return
	}
	hold(f.span(300*time.Millisecond, 3*time.Second), nil)
	f.resume(v)
}

// loseMajority takes two managers away (killed or paused) for a few
// seconds: writes through the survivor must fail fast with a clear error;
// then both come back.
func (f *faultInjector) loseMajority() {
	f.majorityLosses++
	order := f.rng.Perm(len(f.managers))
	a, b, survivor := f.managers[order[0]], f.managers[order[1]], f.managers[order[2]]
	type undo func()
	var undos []undo
	for _, v := range []*node{a, b} {
		if f.rng.IntN(2) == 0 {
			if f.kill(v) {
				undos = append(undos, func() { f.restart(v) })
			}
		} else if f.pause(v) {
			undos = append(undos, func() { f.resume(v) })
		}
	}
	f.probeNoQuorum(survivor, f.span(3*time.Second, 6*time.Second))
	for _, u := range undos {
		u()
	}
}

// probeNoQuorum writes through the survivor for the given time: no write
// may succeed, each must fail within failFast, and once the survivor has
// noticed, the error must say that the quorum is lost.
func (f *faultInjector) probeNoQuorum(survivor *node, d time.Duration) {
	end := time.Now().Add(d)
	saidQuorum := false
	for time.Now().Before(end) || !saidQuorum && time.Now().Before(end.Add(failFast)) {
		f.probes++
		start := time.Now()
		r, o := f.probe.createVia(survivor, f.probe.keys[0])
		took := time.Since(start)
		msg := r.message()
		switch {
		case o == outOK:
			f.t.Errorf("a write through %s succeeded while a majority of managers was down", survivor)
		case took > failFast:
			f.t.Errorf("a write through %s without quorum took %s to fail, want under %s: %s", survivor, took.Round(time.Millisecond), failFast, msg)
		case r.err == nil && !containsAny(msg, "leader", "quorum"):
			f.t.Errorf("a write through %s without quorum failed with an unclear error: %d %s", survivor, r.status, msg)
		}
		if r.err == nil && containsAny(msg, "does not have a leader", "too few managers") {
			saidQuorum = true
		}
	}
	if !saidQuorum {
		f.t.Errorf("writes through %s never said that the quorum is lost while two managers were down", survivor)
		return
	}
	// Reads still answer without quorum, marked as possibly stale.
	r := doAPI(apiClient(survivor, failFast), http.MethodGet, "/services", nil)
	if r.err != nil || r.status != http.StatusOK || !r.stale {
		f.t.Errorf("a read through %s without quorum: %d %s, stale mark %v; want an answer marked X-Flotilla-Stale-Read", survivor, r.status, r.message(), r.stale)
	}
}

func (f *faultInjector) kill(v *node) bool {
	if err := v.signal(syscall.SIGKILL); err != nil {
		f.t.Errorf("kill -9 %s: %v", v, err)
		return false
	}
	if !v.wait(10 * time.Second) {
		f.t.Errorf("%s still running 10s after SIGKILL", v)
		return false
	}
	f.mu.Lock()
	delete(f.paused, v) // a stopped process dies of SIGKILL too
	f.mu.Unlock()
	f.kills++
	return true
}

func (f *faultInjector) restart(v *node) {
	if err := v.tryLaunch(); err != nil {
		f.t.Errorf("restarting %s: %v", v, err)
		return
	}
	f.restarts++
	if err := poll(apiUpTimeout, v.ping); err != nil {
		f.t.Errorf("%s: API not up within %s of its restart: %v", v, apiUpTimeout, err)
	}
}

func (f *faultInjector) pause(v *node) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := v.signal(syscall.SIGSTOP); err != nil {
		f.t.Errorf("SIGSTOP %s: %v", v, err)
		return false
	}
	f.paused[v] = true
	f.pauses++
	return true
}

func (f *faultInjector) resume(v *node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.paused[v] {
		return
	}
	if err := v.signal(syscall.SIGCONT); err != nil {
		f.t.Errorf("SIGCONT %s: %v", v, err)
	}
	delete(f.paused, v)
}

// resumeAll continues every paused manager (the cleanup path).
func (f *faultInjector) resumeAll() {
	f.mu.Lock()
	var ps []*node
	for v := range f.paused {
		ps = append(ps, v)
	}
	f.mu.Unlock()
	for _, v := range ps {
		f.resume(v)
	}
}

// heal leaves every manager running and continued.
func (f *faultInjector) heal() {
	f.resumeAll()
	for _, m := range f.managers {
		if !m.running() {
			f.restart(m)
		}
	}
}

// waitHealthy waits until every manager answers and they agree on a
// leader, so that the next episode never takes away more than one.
func (f *faultInjector) waitHealthy() {
	err := poll(convergeTimeout, func() error {
		var leaders []string
		for _, m := range f.managers {
			l, err := leaderSeenBy(m)
			if err != nil {
				return err
			}
			leaders = append(leaders, l)
		}
		if leaders[0] == "" || len(slices.Compact(leaders)) != 1 {
			return fmt.Errorf("managers see leaders %v", leaders)
		}
		return nil
	})
	if err != nil {
		f.t.Errorf("the cluster did not heal within %s after a fault: %v", convergeTimeout, err)
	}
}

// leaderSeenBy returns the hostname of the leader in GET /nodes on m, ""
// when it shows none.
func leaderSeenBy(m *node) (string, error) {
	r := doAPI(apiClient(m, 3*time.Second), http.MethodGet, "/nodes", nil)
	if r.err != nil || r.status != http.StatusOK {
		return "", fmt.Errorf("GET /nodes on %s: %d %s", m, r.status, r.message())
	}
	var nodes []swarm.Node
	if err := json.Unmarshal(r.body, &nodes); err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.ManagerStatus != nil && n.ManagerStatus.Leader {
			return n.Description.Hostname, nil
		}
	}
	return "", nil
}

// leaderOf returns the manager that the first answering manager shows as
// leader, nil if none does.
func leaderOf(managers []*node) *node {
	for _, m := range managers {
		name, err := leaderSeenBy(m)
		if err == nil && name != "" {
			for _, n := range managers {
				if n.name == name {
					return n
				}
			}
		}
	}
	return nil
}
