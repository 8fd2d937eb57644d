package agent

import (
	"sync"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// A node sends its description until the manager it beats to answers
// that the swarm holds it, then beats without; it sends it again when it
// changes (until the manager holds the new one), and to a manager that
// never says (an earlier version) always.
func TestSessionSendsDescriptionOnlyWhenNeeded(t *testing.T) {
	m := newFakeManagers()
	var mu sync.Mutex
	own := swarm.NodeDescription{Hostname: "host-a"}
	held := map[string]string{"m1": nodeapi.DescriptionHash(own)} // m2 answers none
	m.answer = func(addr string) nodeapi.HeartbeatResponse {
		mu.Lock()
		defer mu.Unlock()
		return nodeapi.HeartbeatResponse{Period: 10e6, DescriptionHash: held[addr]}
	}
	s := newSession(m, "m1", "m2")
	s.Describe = func() swarm.NodeDescription {
		mu.Lock()
		defer mu.Unlock()
		return own
	}
	run(t, s, m)
	carried := func(i int) *swarm.NodeDescription {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.hbReqs[i].Description
	}
	eventually(t, "three beats to m1", func() bool { return m.beatsTo("m1") >= 3 })
	if d := carried(0); d == nil || d.Hostname != "host-a" {
		t.Fatalf("first beat carried %+v, want the description", d)
	}
	for i := 1; i < 3; i++ {
		if d := carried(i); d != nil {
			t.Fatalf("beat %d carried %+v after m1 said it holds it", i, d)
		}
	}

	// The node is renamed: its beats carry the new description until m1
	// holds it, then go bare again.
	mu.Lock()
	own.Hostname = "host-b"
	mu.Unlock()
	n := len(m.beatLog())
	eventually(t, "two more beats", func() bool { return len(m.beatLog()) >= n+2 })
	if d := carried(n + 1); d == nil || d.Hostname != "host-b" {
		t.Fatalf("beat after the change carried %+v, want host-b", d)
	}
	mu.Lock()
	held["m1"] = nodeapi.DescriptionHash(own)
	mu.Unlock()
	n = len(m.beatLog())
	eventually(t, "two more beats", func() bool { return len(m.beatLog()) >= n+2 })
	if d := carried(n + 1); d != nil {
		t.Fatalf("beat carried %+v after m1 said it holds host-b", d)
	}

	// m1 fails: every beat to m2, which never says, carries it.
	m.setFail("m1", errdefs.Unavailable("down"))
	eventually(t, "three beats to m2", func() bool { return m.beatsTo("m2") >= 3 })
	log := m.beatLog()
	for i, mgr := range log {
		if mgr == "m2" {
			if d := carried(i); d == nil || d.Hostname != "host-b" {
				t.Fatalf("beat %d to m2 carried %+v, want the description", i, d)
			}
		}
	}
}
