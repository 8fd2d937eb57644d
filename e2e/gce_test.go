package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/internal/gce"
	"github.com/flotilla-org/flotilla/internal/gce/gcetest"
)

// gceProject is an emulated GCE project (metadata servers and Compute
// API on loopback) whose instances are real daemons started with
// --bootstrap gce.
type gceProject struct {
	*cluster
	emu  *gcetest.Server
	name string // the flotilla-cluster attribute
}

func newGCEProject(t *testing.T, clusterName string, managersExpected int) *gceProject {
	t.Helper()
	requireE2E(t)
	emu, err := gcetest.New("e2e-project")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close) // after the daemons are killed (cleanups run last-in first-out)
	c := &cluster{t: t, base: tempDir(t)}
	t.Cleanup(c.cleanup)
	emu.SetProjectAttr(gce.AttrCluster, clusterName)
	emu.SetProjectAttr(gce.AttrManagersExpected, fmt.Sprint(managersExpected))
	return &gceProject{cluster: c, emu: emu, name: clusterName}
}

// instance creates a VM with its own metadata server and a daemon (not
// started) that bootstraps from it.
func (p *gceProject) instance(name string, attrs map[string]string) *node {
	p.t.Helper()
	n := p.newNode(name)
	in, err := p.emu.AddInstance(name, "127.0.0.1", attrs)
	if err != nil {
		p.t.Fatal(err)
	}
	n.args = []string{"--no-docker", "--bootstrap", "gce", "--listen-addr", n.addr}
	n.env = []string{"GCE_METADATA_HOST=" + in.Host, gce.EnvComputeEndpoint + "=" + p.emu.ComputeEndpoint()}
	return n
}

func (p *gceProject) attr(suffix string) string { return p.emu.ProjectAttrs()[gce.Key(p.name, suffix)] }

// claimWrites counts the writes that claimed the initialisation.
func (p *gceProject) claimWrites() int {
	n := 0
	for _, w := range p.emu.Writes() {
		if _, ok := w.Changed[gce.Key(p.name, "init")]; ok {
			n++
		}
	}
	return n
}

// inits counts the swarms the managers' logs say they initialised.
func (p *gceProject) inits() int {
	n := 0
	for _, m := range p.managers {
		b, _ := os.ReadFile(m.logPath)
		n += strings.Count(string(b), "swarm initialized")
	}
	return n
}

// TestGCEBootstrap: a worker started before any manager waits; three
// managers started at the same moment form one swarm (exactly one
// initialises) and the worker joins it; the metadata follows the leader
// when it is killed, and follows a token rotation.
func TestGCEBootstrap(t *testing.T) {
	p := newGCEProject(t, "e2e", 3)

	t.Run("bad role attribute stops the daemon with a clear error", func(t *testing.T) {
		bad := p.instance("bad", map[string]string{gce.AttrRole: "boss"})
		bad.launch()
		if !bad.wait(apiUpTimeout) {
			t.Fatalf("the daemon kept running with flotilla-role=boss")
		}
		if log := tail(bad.logPath, 5); !strings.Contains(log, gce.AttrRole) || !strings.Contains(log, "manager or worker") {
			t.Fatalf("the error should name the attribute and the choices; log:\n%s", log)
		}
		p.nodes = slices.DeleteFunc(p.nodes, func(n *node) bool { return n == bad })
	})

	w1 := p.instance("w1", map[string]string{gce.AttrRole: "worker"})
	p.workers = append(p.workers, w1)
	w1.Start()
	eventually(t, convergeTimeout, func() error {
		if !strings.Contains(tail(w1.logPath, 20), "waiting for the leader to publish") {
			return fmt.Errorf("w1 does not say it waits for the tokens")
		}
		return nil
	})

	for _, name := range []string{"m1", "m2", "m3"} {
		p.managers = append(p.managers, p.instance(name, map[string]string{gce.AttrRole: "manager"}))
	}
	// All at once, and their first reads held until all three have read
	// the same fingerprint: the init race, for certain.
	p.emu.GatherReads(len(p.managers), 20*time.Second)
	for _, m := range p.managers {
		m.launch()
	}
	for _, m := range p.managers {
		m.waitAPI()
	}
	p.waitReady(p.managers[0], convergeTimeout)

	if p.emu.Conflicts() < len(p.managers)-1 {
		t.Fatalf("%d writes were refused for a stale fingerprint; the %d managers did not race", p.emu.Conflicts(), len(p.managers))
	}
	if got := p.claimWrites(); got != 1 {
		t.Fatalf("%d writes claimed the initialisation, want 1: %+v", got, p.emu.Writes())
	}
	t.Logf("init race: %d claim write accepted, %d writes refused for a stale fingerprint", p.claimWrites(), p.emu.Conflicts())
	if inits := p.inits(); inits != 1 {
		t.Fatalf("%d managers initialised a swarm, want 1", inits)
	}
	leader := p.mustLeader(p.managers[0])
	eventually(t, convergeTimeout, func() error { return p.checkPublished(leader, p.managers) })
	if tok := strings.TrimSpace(leader.mustCLI(t, "swarm", "join-token", "-q", "worker")); p.attr("worker-token") != tok {
		t.Fatalf("published worker token %q, join-token says %q", p.attr("worker-token"), tok)
	}

	t.Run("rotated token is republished", func(t *testing.T) {
		tok := strings.TrimSpace(leader.mustCLI(t, "swarm", "join-token", "--rotate", "-q", "worker"))
		eventually(t, convergeTimeout, func() error {
			if got := p.attr("worker-token"); got != tok {
				return fmt.Errorf("published worker token %q, want the rotated %q", got, tok)
			}
			return nil
		})
	})

	t.Run("killed leader leaves the published managers, and returns to them on restart", func(t *testing.T) {
		leader.Kill9()
		alive := p.otherManagers(leader)
		var newLeader *node
		eventually(t, convergeTimeout, func() (err error) {
			if newLeader, err = p.leader(alive[0]); err == nil && newLeader == leader {
				err = fmt.Errorf("node ls on %s still shows the killed %s as leader", alive[0], leader)
			}
			return err
		})
		eventually(t, convergeTimeout, func() error { return p.checkPublished(newLeader, alive) })
		if p.claimWrites() != 1 {
			t.Fatalf("the failover wrote a new init claim: %+v", p.emu.Writes())
		}

		// Back from its data dir, it rejoins (no new claim, no new swarm)
		// and the leader lists it again.
		leader.Start()
		eventually(t, convergeTimeout, func() error { return p.checkPublished(newLeader, p.managers) })
		p.waitReady(newLeader, convergeTimeout)
		if p.claimWrites() != 1 || p.inits() != 1 {
			t.Fatalf("the restarted manager claimed or initialised again")
		}
	})
}

// checkPublished compares the project metadata with the managers that
// should be up, leader first.
func (p *gceProject) checkPublished(leader *node, up []*node) error {
	want := []string{leader.addr}
	for _, m := range up {
		if m != leader {
			want = append(want, m.addr)
		}
	}
	slices.Sort(want[1:])
	if got := p.attr("managers"); got != strings.Join(want, ",") {
		return fmt.Errorf("published managers %q, want %q", got, strings.Join(want, ","))
	}
	if got := p.attr("leader"); got != leader.addr {
		return fmt.Errorf("published leader %q, want %s (%s)", got, leader.addr, leader)
	}
	if p.attr("manager-token") == "" || p.attr("worker-token") == "" {
		return fmt.Errorf("tokens not published: %v", p.emu.ProjectAttrs())
	}
	return nil
}
