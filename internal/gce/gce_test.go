package gce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/internal/gce/gcetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// emulator starts a project with one instance and points this process's
// metadata client at it.
func emulator(t *testing.T, attrs map[string]string) (*gcetest.Server, *Metadata, *Compute) {
	t.Helper()
	s, err := gcetest.New("proj-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	in, err := s.AddInstance("vm-a", "10.1.2.3", attrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GCE_METADATA_HOST", in.Host)
	t.Setenv(EnvComputeEndpoint, s.ComputeEndpoint())
	md := NewMetadata()
	return s, md, NewCompute(md, "proj-1")
}

func TestLoadSettings(t *testing.T) {
	s, md, _ := emulator(t, map[string]string{AttrRole: "manager"})
	s.SetProjectAttr(AttrCluster, "prod")
	s.SetProjectAttr(AttrRole, "worker") // the instance's attribute wins
	s.SetProjectAttr(AttrManagersExpected, "3")
	ctx := context.Background()
	got, err := md.LoadSettings(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{Project: "proj-1", Instance: "vm-a", IP: "10.1.2.3", Cluster: "prod", Role: "manager", ManagersExpected: 3}
	if got != want {
		t.Fatalf("settings %+v, want %+v", got, want)
	}
	if got, _ := md.LoadSettings(ctx, "worker"); got.Role != "worker" {
		t.Fatalf("--role worker gave role %q", got.Role)
	}
	for attr, bad := range map[string]string{AttrCluster: "Prod_1", AttrManagersExpected: "three"} {
		s.SetProjectAttr(attr, bad)
		if _, err := md.LoadSettings(ctx, ""); err == nil || !strings.Contains(err.Error(), attr) {
			t.Fatalf("%s=%q: error %v, want one naming the attribute", attr, bad, err)
		}
		s.SetProjectAttr(attr, "")
	}
	if _, err := md.LoadSettings(ctx, "boss"); err == nil || !strings.Contains(err.Error(), "manager or worker") {
		t.Fatalf("--role boss: %v", err)
	}
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1") // nothing listens there
	if _, err := md.LoadSettings(ctx, ""); err == nil || !strings.Contains(err.Error(), "metadata server at 127.0.0.1:1") {
		t.Fatalf("unreachable metadata server: %v, want an error that names it", err)
	}
}

func TestStaleFingerprintIsRefused(t *testing.T) {
	s, _, c := emulator(t, nil)
	ctx := context.Background()
	cur, err := c.CommonMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.SetProjectAttr("other", "x") // someone writes in between
	if s.Fingerprint() == cur.Fingerprint {
		t.Fatal("a write kept the fingerprint")
	}
	err = c.SetCommonMetadata(ctx, cur.Fingerprint, []Item{{"mine", "y"}})
	if !errors.Is(err, ErrFingerprint) {
		t.Fatalf("write with a stale fingerprint: %v, want ErrFingerprint", err)
	}
	if a := s.ProjectAttrs(); a["mine"] != "" || a["other"] != "x" {
		t.Fatalf("a refused write changed the metadata: %v", a)
	}
	// Update re-reads and keeps the other writer's key.
	if err := c.Update(ctx, func(a map[string]string) (bool, error) { a["mine"] = "y"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if a := s.ProjectAttrs(); a["mine"] != "y" || a["other"] != "x" {
		t.Fatalf("after Update: %v", a)
	}
	err = c.SetCommonMetadata(ctx, s.Fingerprint(), []Item{{"bad key!", "v"}})
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("malformed key: %v, want a 400 error", err)
	}
	if a := s.ProjectAttrs(); len(a) != 2 {
		t.Fatalf("a malformed write changed the metadata: %v", a)
	}
}

// fakeNode stands in for the daemon: Init makes it the leader, whose
// publisher then runs like the manager's leader loop.
type fakeNode struct {
	name    string
	in      atomic.Bool
	inits   *atomic.Int32
	joined  chan string
	publish func(addr string)
}

func (n *fakeNode) InSwarm() bool { return n.in.Load() }
func (n *fakeNode) Init(context.Context) error {
	n.inits.Add(1)
	n.in.Store(true)
	n.publish(n.name + ":2377")
	return nil
}
func (n *fakeNode) Join(_ context.Context, token string, managers []string) error {
	n.in.Store(true)
	n.joined <- token
	return nil
}

// TestOneInitAmongSimultaneousManagers starts several bootstraps at once
// (twice) and checks that exactly one initialises and the rest join with
// the tokens it published.
func TestOneInitAmongSimultaneousManagers(t *testing.T) {
	s, md, c := emulator(t, nil)
	for round := range 2 {
		cluster := fmt.Sprintf("c%d", round)
		var inits atomic.Int32
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var pubWG sync.WaitGroup
		publish := func(addr string) {
			pubWG.Add(1)
			go func() {
				defer pubWG.Done()
				p := &Publisher{Compute: c, Cluster: cluster, Log: quiet}
				st := State{ManagerToken: "MTOK", WorkerToken: "WTOK", Leader: addr, Managers: []string{addr}}
				p.Run(ctx, func() (State, bool) { return st, true }, func() <-chan struct{} { return nil })
			}()
		}
		const n = 5
		s.GatherReads(n-1, 10*time.Second) // the n-1 managers read the same fingerprint
		before := s.Conflicts()
		joined := make(chan string, n)
		var wg sync.WaitGroup
		for i := range n {
			role := "manager"
			if i == n-1 {
				role = "worker"
			}
			b := &Bootstrap{Settings: Settings{Project: "proj-1", Instance: fmt.Sprintf("vm-%d", i), Cluster: cluster, Role: role},
				MD: md, Compute: c, Log: quiet, WaitSec: 2,
				Node: &fakeNode{name: fmt.Sprintf("vm-%d", i), inits: &inits, joined: joined, publish: publish}}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := b.Run(ctx); err != nil {
					t.Errorf("bootstrap %s: %v", b.Settings.Instance, err)
				}
			}()
		}
		wg.Wait()
		close(joined)
		tokens := map[string]int{}
		for tok := range joined {
			tokens[tok]++
		}
		cancel()
		pubWG.Wait()
		if inits.Load() != 1 || tokens["MTOK"] != n-2 || tokens["WTOK"] != 1 {
			t.Fatalf("round %d: %d inits, joins by token %v; want 1 init, %d manager joins, 1 worker join", round, inits.Load(), tokens, n-2)
		}
		if got := s.Conflicts() - before; got < n-2 {
			t.Fatalf("round %d: %d writes refused for a stale fingerprint; the managers did not race", round, got)
		}
		claims := 0
		for _, w := range s.Writes() {
			if _, ok := w.Changed[Key(cluster, suffixInit)]; ok {
				claims++
			}
		}
		if claims != 1 {
			t.Fatalf("round %d: %d claim writes, want 1", round, claims)
		}
	}
}

func TestManagersExpectedCapsManagerJoins(t *testing.T) {
	_, md, c := emulator(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st := State{ManagerToken: "MTOK", WorkerToken: "WTOK", Leader: "a:1", Managers: []string{"a:1", "b:1", "c:1"}}
	if err := (&Publisher{Compute: c, Cluster: "cap", Log: quiet}).publish(ctx, st); err != nil {
		t.Fatal(err)
	}
	joined := make(chan string, 1)
	var inits atomic.Int32
	b := &Bootstrap{Settings: Settings{Instance: "vm-9", Cluster: "cap", Role: "manager", ManagersExpected: 3},
		MD: md, Compute: c, Log: quiet, Node: &fakeNode{inits: &inits, joined: joined}}
	if err := b.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if tok := <-joined; tok != "WTOK" {
		t.Fatalf("a 4th manager-role instance with 3 expected joined with %s, want the worker token", tok)
	}
}

func TestProviderReadsPublishedManagers(t *testing.T) {
	s, md, _ := emulator(t, nil)
	var p interface {
		Managers(context.Context) ([]string, error)
		String() string
	} = &Provider{MD: md, Cluster: "prod"}
	if got, err := p.Managers(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("nothing published: %v, %v; want none and no error", got, err)
	}
	s.SetProjectAttr(Key("prod", suffixManagers), "10.0.0.1:2377, 10.0.0.2:2377")
	got, err := p.Managers(context.Background())
	if err != nil || strings.Join(got, " ") != "10.0.0.1:2377 10.0.0.2:2377" {
		t.Fatalf("Managers() = %v, %v", got, err)
	}
}

// TestStaleClaim: a claim left by a manager that died before publishing
// is taken over once old; one whose claimant still answers is not.
func TestStaleClaim(t *testing.T) {
	s, md, c := emulator(t, nil)
	alive, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	old := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		addr     string
		takeOver bool
	}{{dead.Addr().String(), true}, {alive.Addr().String(), false}} {
		s.SetProjectAttr(Key("st", suffixInit), `{"instance":"vm-gone","addr":"`+tc.addr+`","at":"`+old+`"}`)
		var inits atomic.Int32
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		b := &Bootstrap{Settings: Settings{Instance: "vm-new", Cluster: "st", Role: "manager"}, MD: md, Compute: c, Log: quiet,
			ClaimTimeout: time.Minute, WaitSec: 1,
			Node: &fakeNode{inits: &inits, joined: make(chan string, 1), publish: func(string) {}}}
		err := b.Run(ctx)
		cancel()
		if tc.takeOver && (err != nil || inits.Load() != 1 || !strings.Contains(s.ProjectAttrs()[Key("st", suffixInit)], "vm-new")) {
			t.Fatalf("claim of a dead manager: run %v, %d inits, claim %s; want it taken over", err, inits.Load(), s.ProjectAttrs()[Key("st", suffixInit)])
		}
		if !tc.takeOver && (inits.Load() != 0 || !strings.Contains(s.ProjectAttrs()[Key("st", suffixInit)], "vm-gone")) {
			t.Fatalf("claim of a manager that answers was taken over (%d inits)", inits.Load())
		}
	}
}
