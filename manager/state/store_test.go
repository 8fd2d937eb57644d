package state_test

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

var (
	t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(time.Minute)
)

func node(id, hostname string) *state.Node {
	n := &state.Node{Role: swarm.NodeRoleWorker, Addr: "10.0.0.1:2377"}
	n.ID = id
	n.Spec.Role = swarm.NodeRoleWorker
	n.Spec.Availability = swarm.NodeAvailabilityActive
	n.Description.Hostname = hostname
	n.Status.State = swarm.NodeStateReady
	return n
}

func cluster(id string) *state.Cluster {
	c := &state.Cluster{WorkerToken: "wt", ManagerToken: "mt", RootCACertPEM: []byte("cert")}
	c.ID = id
	c.Spec.Name = "default"
	return c
}

func batch(at time.Time, ops ...state.Op) state.Batch { return state.Batch{Ops: ops, Time: at} }

func mustApply(t *testing.T, s *state.Store, index uint64, b state.Batch) {
	t.Helper()
	if err := s.Apply(index, b); err != nil {
		t.Fatalf("apply at %d: %v", index, err)
	}
}

// dump is the store's content as a snapshot, for comparisons.
func dump(t *testing.T, s *state.Store) string {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestApplyCreateUpdateDelete(t *testing.T) {
	s := state.NewStore()
	if s.Cluster() != nil || s.Node("a") != nil || len(s.Nodes()) != 0 || s.Index() != 0 {
		t.Fatal("new store is not empty")
	}
	n := node("a", "host-a")
	n.Version.Index = 999 // the proposer's idea of the version is ignored
	mustApply(t, s, 5, batch(t0,
		state.NewOp(state.TableCluster, state.ActionCreate, cluster("c1"), 0),
		state.NewOp(state.TableNodes, state.ActionCreate, n, 0),
		state.NewOp(state.TableNodes, state.ActionCreate, node("b", "host-b"), 0)))
	got := s.Node("a")
	if got == nil || got.Description.Hostname != "host-a" || got.Addr != "10.0.0.1:2377" || got.Role != swarm.NodeRoleWorker {
		t.Fatalf("created node = %+v", got)
	}
	if got.Version.Index != 5 || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) {
		t.Errorf("meta after create = %+v, want version 5 at %s", got.Meta, t0)
	}
	if c := s.Cluster(); c == nil || c.ID != "c1" || c.WorkerToken != "wt" || string(c.RootCACertPEM) != "cert" || c.Version.Index != 5 {
		t.Errorf("cluster = %+v", c)
	}
	if s.Index() != 5 {
		t.Errorf("index = %d, want 5", s.Index())
	}
	if nodes := s.Nodes(); len(nodes) != 2 || nodes[0].ID != "a" || nodes[1].ID != "b" {
		t.Errorf("nodes = %+v, want a and b in ID order", nodes)
	}

	u := got.Copy()
	u.Spec.Availability = swarm.NodeAvailabilityDrain
	u.CreatedAt = t1 // ignored too
	mustApply(t, s, 7, batch(t1, state.NewOp(state.TableNodes, state.ActionUpdate, u, 5)))
	got = s.Node("a")
	if got.Spec.Availability != swarm.NodeAvailabilityDrain || got.Version.Index != 7 {
		t.Errorf("after update: availability %s version %d", got.Spec.Availability, got.Version.Index)
	}
	if !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t1) {
		t.Errorf("after update: created %s updated %s, want %s and %s", got.CreatedAt, got.UpdatedAt, t0, t1)
	}
	// An update with ExpectVersion 0 is unconditional.
	mustApply(t, s, 8, batch(t1, state.NewOp(state.TableNodes, state.ActionUpdate, got.Copy(), 0)))
	if v := s.Node("a").Version.Index; v != 8 {
		t.Errorf("version after unconditional update = %d", v)
	}

	mustApply(t, s, 9, batch(t1, state.NewOp(state.TableNodes, state.ActionDelete, s.Node("b"), 0)))
	if s.Node("b") != nil || len(s.Nodes()) != 1 {
		t.Errorf("b still there after delete")
	}
	// A conditional delete.
	mustApply(t, s, 10, batch(t1, state.NewOp(state.TableNodes, state.ActionDelete, s.Node("a"), 8)))
	if s.Node("a") != nil || s.Index() != 10 {
		t.Errorf("a still there after delete, index %d", s.Index())
	}
}

// Objects handed out are shared; Copy gives one the caller may change.
func TestCopyIsDeep(t *testing.T) {
	s := state.NewStore()
	n := node("a", "h")
	n.Spec.Labels = map[string]string{"k": "v"}
	mustApply(t, s, 1, batch(t0, state.NewOp(state.TableNodes, state.ActionCreate, n, 0)))
	n.Spec.Labels["k"] = "changed after apply"
	c := s.Node("a").Copy()
	c.Spec.Labels["k"] = "changed in copy"
	c.Description.Hostname = "x"
	if got := s.Node("a"); got.Spec.Labels["k"] != "v" || got.Description.Hostname != "h" {
		t.Errorf("stored node changed through a copy or the applied object: %+v", got.Spec)
	}
	cc := cluster("c").Copy()
	if cc.ID != "c" || cc.WorkerToken != "wt" || string(cc.RootCACertPEM) != "cert" {
		t.Errorf("cluster copy = %+v", cc)
	}
}

func TestApplyRefusalsChangeNothing(t *testing.T) {
	good := node("a", "host-a")
	badJSON := state.Op{Table: state.TableNodes, Action: state.ActionUpdate, ID: "a", Object: json.RawMessage(`{"ID": 5}`)}
	mismatch := state.NewOp(state.TableNodes, state.ActionCreate, good, 0)
	mismatch.ID = "b"
	for _, tc := range []struct {
		name string
		op   state.Op
		kind errdefs.Kind
		msg  string
	}{
		{"create existing", state.NewOp(state.TableNodes, state.ActionCreate, good, 0), errdefs.KindConflict, "already exists"},
		{"stale version", state.NewOp(state.TableNodes, state.ActionUpdate, good, 2), errdefs.KindConflict, "out of sequence"},
		{"future version", state.NewOp(state.TableNodes, state.ActionUpdate, good, 4), errdefs.KindConflict, "out of sequence"},
		{"stale delete", state.NewOp(state.TableNodes, state.ActionDelete, good, 2), errdefs.KindConflict, "out of sequence"},
		{"update missing", state.NewOp(state.TableNodes, state.ActionUpdate, node("zz", "h"), 0), errdefs.KindNotFound, "node zz not found"},
		{"versioned update of missing", state.NewOp(state.TableNodes, state.ActionUpdate, node("zz", "h"), 3), errdefs.KindNotFound, "not found"},
		{"delete missing", state.NewOp(state.TableNodes, state.ActionDelete, node("zz", "h"), 0), errdefs.KindNotFound, "not found"},
		{"unknown table", state.NewOp("widgets", state.ActionCreate, node("w", "h"), 0), errdefs.KindInvalid, "unknown table"},
		{"empty ID", state.NewOp(state.TableNodes, state.ActionCreate, node("", "h"), 0), errdefs.KindInvalid, "empty ID"},
		{"ID mismatch", mismatch, errdefs.KindInvalid, "does not match"},
		{"unknown action", state.Op{Table: state.TableNodes, Action: "upsert", ID: "a", Object: json.RawMessage(`{"ID":"a"}`)}, errdefs.KindInvalid, "unknown action"},
		{"undecodable object", badJSON, errdefs.KindInvalid, "node a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := state.NewStore()
			mustApply(t, s, 3, batch(t0, state.NewOp(state.TableNodes, state.ActionCreate, good, 0)))
			before := dump(t, s)
			ch := s.Changed()
			err := s.Apply(4, batch(t1, tc.op))
			if err == nil {
				t.Fatal("applied; want a refusal")
			}
			if k := errdefs.KindOf(err); k != tc.kind {
				t.Errorf("error %q has kind %d, want %d", err, k, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			if after := dump(t, s); after != before {
				t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
			}
			if s.Index() != 3 {
				t.Errorf("index = %d after a refused batch, want 3", s.Index())
			}
			if closed(ch) {
				t.Error("Changed fired for a refused batch")
			}
		})
	}
}

// All ops of a batch apply, or none.
func TestBatchIsAtomic(t *testing.T) {
	s := state.NewStore()
	mustApply(t, s, 1, batch(t0,
		state.NewOp(state.TableCluster, state.ActionCreate, cluster("c"), 0),
		state.NewOp(state.TableNodes, state.ActionCreate, node("a", "a"), 0)))
	before := dump(t, s)
	c := s.Cluster().Copy()
	c.RemovedNodes = []string{"a"}
	err := s.Apply(2, batch(t1,
		state.NewOp(state.TableNodes, state.ActionCreate, node("b", "b"), 0),
		state.NewOp(state.TableNodes, state.ActionDelete, s.Node("a"), 0),
		state.NewOp(state.TableCluster, state.ActionUpdate, c, 0),
		state.NewOp(state.TableNodes, state.ActionUpdate, node("missing", "m"), 0)))
	// The error names the object, as users see it (no "op 3:" prefix).
	if err == nil || !strings.Contains(err.Error(), "missing") || strings.HasPrefix(err.Error(), "op ") || !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("err = %v, want: node missing not found", err)
	}
	if after := dump(t, s); after != before {
		t.Errorf("a refused batch changed the state:\nbefore %s\nafter  %s", before, after)
	}

	// Later ops see earlier ones of the same batch: create then update
	// at the batch's own index.
	n := node("b", "b")
	u := n.Copy()
	u.Spec.Labels = map[string]string{"x": "y"}
	mustApply(t, s, 3, batch(t1,
		state.NewOp(state.TableNodes, state.ActionCreate, n, 0),
		state.NewOp(state.TableNodes, state.ActionUpdate, u, 3)))
	if got := s.Node("b"); got == nil || got.Spec.Labels["x"] != "y" || got.Version.Index != 3 {
		t.Errorf("node b = %+v", got)
	}
	// An empty batch is a no-op that still moves the index.
	mustApply(t, s, 4, batch(t1))
	if s.Index() != 4 {
		t.Errorf("index = %d after an empty batch", s.Index())
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := state.NewStore()
	n := node("a", "host-a")
	n.Spec.Labels = map[string]string{"zone": "1"}
	n.ManagerStatus = &swarm.ManagerStatus{Addr: "10.0.0.1:2377", Reachability: swarm.ReachabilityReachable}
	n.Role = swarm.NodeRoleManager
	c := cluster("c")
	c.RootCAKeyPEM = []byte("key")
	c.RemovedNodes = []string{"gone"}
	c.IngressMade = true
	nw := &state.Network{}
	nw.ID = "net"
	nw.Spec.Name = "web"
	nw.IPAMOptions = &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: netip.MustParsePrefix("10.0.1.0/24")}}}
	mustApply(t, s, 10, batch(t0,
		state.NewOp(state.TableCluster, state.ActionCreate, c, 0),
		state.NewOp(state.TableNodes, state.ActionCreate, n, 0),
		state.NewOp(state.TableNodes, state.ActionCreate, node("b", "host-b"), 0),
		state.NewOp(state.TableNetworks, state.ActionCreate, nw, 0)))
	want := dump(t, s)

	// A snapshot is a point in time: writes after it do not show.
	sn := s.Snapshot()
	mustApply(t, s, 11, batch(t1,
		state.NewOp(state.TableNodes, state.ActionDelete, s.Node("b"), 0),
		state.NewOp(state.TableNodes, state.ActionCreate, node("c", "host-c"), 0)))
	var buf bytes.Buffer
	if err := sn.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != want {
		t.Errorf("snapshot taken at 10 shows later writes:\nwant %s\ngot  %s", want, buf.String())
	}

	// Restore replaces everything, including objects the snapshot lacks.
	r := state.NewStore()
	mustApply(t, r, 50, batch(t1, state.NewOp(state.TableNodes, state.ActionCreate, node("other", "o"), 0)))
	ch := r.Changed()
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !closed(ch) {
		t.Error("Restore did not fire Changed")
	}
	if got := dump(t, r); got != want {
		t.Errorf("restored state differs:\nwant %s\ngot  %s", want, got)
	}
	if r.Index() != 10 {
		t.Errorf("restored index = %d, want 10", r.Index())
	}
	if r.Node("other") != nil || r.Node("c") != nil {
		t.Error("objects absent from the snapshot survived Restore")
	}
	got := r.Node("a")
	if got.ManagerStatus == nil || got.ManagerStatus.Addr != "10.0.0.1:2377" || got.Spec.Labels["zone"] != "1" ||
		got.Version.Index != 10 || !got.CreatedAt.Equal(t0) || got.Role != swarm.NodeRoleManager {
		t.Errorf("restored node = %+v", got)
	}
	if rc := r.Cluster(); string(rc.RootCAKeyPEM) != "key" || len(rc.RemovedNodes) != 1 || !rc.IngressMade {
		t.Errorf("restored cluster = %+v", rc)
	}
	if rn := r.Network("net"); rn == nil || rn.Spec.Name != "web" || rn.IPAMOptions.Configs[0].Subnet.String() != "10.0.1.0/24" {
		t.Errorf("restored network = %+v", rn)
	}
	// The restored store takes writes with versions as before.
	u := got.Copy()
	u.Spec.Availability = swarm.NodeAvailabilityPause
	mustApply(t, r, 12, batch(t1, state.NewOp(state.TableNodes, state.ActionUpdate, u, 10)))

	// An empty store round-trips too.
	var empty bytes.Buffer
	if err := state.NewStore().WriteSnapshot(&empty); err != nil {
		t.Fatal(err)
	}
	if err := r.Restore(&empty); err != nil {
		t.Fatal(err)
	}
	if len(r.Nodes()) != 0 || r.Cluster() != nil || len(r.Networks()) != 0 {
		t.Error("restoring an empty snapshot left objects behind")
	}
}

func TestRestoreGarbageChangesNothing(t *testing.T) {
	for name, data := range map[string]string{
		"empty":          "",
		"not json":       "this is not a snapshot",
		"truncated":      `{"Version":1,"Index":7,"Tables":{"nodes":[{"ID":"x"`,
		"json null":      "null",
		"newer format":   `{"Version":2,"Index":7,"Tables":{}}`,
		"unknown table":  `{"Version":1,"Index":7,"Tables":{"widgets":[{"ID":"w"}]}}`,
		"bad row":        `{"Version":1,"Index":7,"Tables":{"nodes":[{"ID":"x"}, 42]}}`,
		"row without ID": `{"Version":1,"Index":7,"Tables":{"nodes":[{"ID":"x"}, {"Addr":"1.2.3.4:5"}]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			s := state.NewStore()
			mustApply(t, s, 3, batch(t0,
				state.NewOp(state.TableCluster, state.ActionCreate, cluster("c"), 0),
				state.NewOp(state.TableNodes, state.ActionCreate, node("a", "a"), 0)))
			before := dump(t, s)
			ch := s.Changed()
			if err := s.Restore(strings.NewReader(data)); err == nil {
				t.Fatal("garbage restored without error")
			}
			if after := dump(t, s); after != before {
				t.Errorf("state changed:\nbefore %s\nafter  %s", before, after)
			}
			if s.Index() != 3 {
				t.Errorf("index = %d, want 3", s.Index())
			}
			if closed(ch) {
				t.Error("Changed fired")
			}
		})
	}
}

func TestChanged(t *testing.T) {
	s := state.NewStore()
	ch := s.Changed()
	if closed(ch) {
		t.Fatal("Changed is closed before any write")
	}
	if s.Changed() != ch {
		t.Error("Changed returned a new channel without a write in between")
	}
	done := make(chan struct{})
	go func() {
		<-ch
		close(done)
	}()
	mustApply(t, s, 1, batch(t0, state.NewOp(state.TableNodes, state.ActionCreate, node("a", "a"), 0)))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter on Changed was not woken by Apply")
	}
	next := s.Changed()
	if closed(next) {
		t.Error("the channel after a write is already closed")
	}
	if err := s.Apply(2, batch(t0, state.NewOp(state.TableNodes, state.ActionCreate, node("a", "a"), 0))); err == nil {
		t.Fatal("duplicate create applied")
	}
	if closed(next) {
		t.Error("a refused batch fired Changed")
	}
	mustApply(t, s, 3, batch(t0))
	if !closed(next) {
		t.Error("an applied (empty) batch did not fire Changed")
	}
}

// Apply and reads run concurrently under the race detector.
func TestConcurrentReadsDuringApply(t *testing.T) {
	s := state.NewStore()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, n := range s.Nodes() {
				_ = n.Copy()
			}
			_ = s.Index()
			var buf bytes.Buffer
			_ = s.WriteSnapshot(&buf)
		}
	}()
	for i := range 200 {
		idx := uint64(i + 1)
		mustApply(t, s, idx, batch(t0, state.NewOp(state.TableNodes, state.ActionCreate, node(string(rune('a'+i%26))+strings.Repeat("x", i/26), "h"), 0)))
	}
	close(stop)
	<-done
	if len(s.Nodes()) != 200 || s.Index() != 200 {
		t.Errorf("%d nodes at index %d", len(s.Nodes()), s.Index())
	}
}
