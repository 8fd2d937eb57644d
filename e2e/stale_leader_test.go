package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// TestResumedLeaderDoesNotWriteFromStaleState pauses the leader, lets the
// others elect a new one and create a service, then sends updates of that
// service to the paused former leader and resumes it. It still believes it
// leads for a moment; it must not resolve the name against its stale
// replica and answer "no such service" (TestDurability found that answer
// in CI: not linearizable). Each update must succeed, be refused as out of
// sequence, or be refused as not applied.
func TestResumedLeaderDoesNotWriteFromStaleState(t *testing.T) {
	c := newCluster(t, 3, 0)
	old := c.mustLeader(c.managers[0])
	others := c.otherManagers(old)
	if err := old.signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %s: %v", old, err)
	}
	resumed := false
	defer func() {
		if !resumed {
			_ = old.signal(syscall.SIGCONT)
		}
	}()
	eventually(t, convergeTimeout, func() error {
		l, err := c.leader(others[0])
		if err != nil {
			return err
		}
		if l == old {
			return fmt.Errorf("%s still reported as the leader", old)
		}
		return nil
	})

	const name = "late"
	status, body, err := others[0].apiRequest(http.MethodPost, "/services/create", serviceSpecFor(name, "v1"))
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create %s via %s: %d %s %v", name, others[0], status, body, err)
	}
	var s swarm.Service
	status, body, err = others[0].apiRequest(http.MethodGet, "/services/"+name, nil)
	if err != nil || status != http.StatusOK || json.Unmarshal(body, &s) != nil {
		t.Fatalf("inspect %s via %s: %d %s %v", name, others[0], status, body, err)
	}

	// The requests wait in the paused daemon's socket backlog, so it reads
	// them the moment it resumes, before Raft tells it that it lost.
	const n = 8
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for i := range n {
		cn, err := net.Dial("unix", old.sock)
		if err != nil {
			t.Fatalf("dial %s: %v", old, err)
		}
		conns = append(conns, cn)
		spec, _ := json.Marshal(serviceSpecFor(name, fmt.Sprintf("v%d", i+2)))
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://flotilla/services/%s/update?version=%d", name, s.Version.Index), bytes.NewReader(spec))
		req.Header.Set("Content-Type", "application/json")
		if err := req.Write(cn); err != nil {
			t.Fatalf("send update to %s: %v", old, err)
		}
	}
	// Reads too: an unmarked answer must be the current state.
	const reads = 8
	for range reads {
		cn, err := net.Dial("unix", old.sock)
		if err != nil {
			t.Fatalf("dial %s: %v", old, err)
		}
		conns = append(conns, cn)
		req, _ := http.NewRequest(http.MethodGet, "http://flotilla/services/"+name, nil)
		if err := req.Write(cn); err != nil {
			t.Fatalf("send read to %s: %v", old, err)
		}
	}
	if err := old.signal(syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %s: %v", old, err)
	}
	resumed = true

	for i, cn := range conns {
		_ = cn.SetReadDeadline(time.Now().Add(cliTimeout))
		res, err := http.ReadResponse(bufio.NewReader(cn), nil)
		if err != nil {
			t.Errorf("update %d via the resumed %s: no answer: %v", i, old, err)
			continue
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		msg := apiReply{status: res.StatusCode, body: b}.message()
		if i >= n { // a read
			if res.StatusCode != http.StatusOK && res.Header.Get("X-Flotilla-Stale-Read") == "" {
				t.Errorf("read %d of existing service %s via the resumed former leader %s answered %d %q without marking it stale", i-n, name, old, res.StatusCode, msg)
			}
			continue
		}
		switch {
		case res.StatusCode == http.StatusOK:
		case res.StatusCode == http.StatusConflict && containsAny(msg, "update out of sequence"):
		case res.StatusCode == http.StatusServiceUnavailable && refusedForNoLeader(msg):
		default:
			t.Errorf("update %d of existing service %s via the resumed former leader %s answered %d %q; want success, out of sequence, or not applied", i, name, old, res.StatusCode, msg)
		}
	}
	status, body, err = others[0].apiRequest(http.MethodGet, "/services/"+name, nil)
	if err != nil || status != http.StatusOK {
		t.Errorf("service %s after the updates: %d %s %v, want it still there", name, status, body, err)
	}
}
