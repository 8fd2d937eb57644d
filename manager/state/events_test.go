package state_test

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

func service(id, name, image string, replicas uint64) *state.Service {
	s := &state.Service{}
	s.ID = id
	s.Spec.Name = name
	s.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: image}
	s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &replicas}
	return s
}

// brief renders events as "type action id k=v,k=v" lines, attributes sorted.
func brief(evs []events.Message) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%s %s %s", ev.Type, ev.Action, ev.Actor.ID)
		var kv []string
		for k, v := range ev.Actor.Attributes {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		fmt.Fprintf(&b, " %s\n", strings.Join(kv, ","))
	}
	return b.String()
}

func TestEventsOfServiceLifecycle(t *testing.T) {
	s := state.NewStore()
	svc := service("s1", "web", "nginx:1", 1)
	mustApply(t, s, 1, batch(t0, state.NewOp(state.TableServices, state.ActionCreate, svc, 0)))
	up := service("s1", "web", "nginx:2", 3)
	up.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating}
	mustApply(t, s, 2, batch(t1, state.NewOp(state.TableServices, state.ActionUpdate, up, 0)))
	tk := task("t1")
	mustApply(t, s, 3, batch(t1, state.NewOp(state.TableTasks, state.ActionCreate, tk, 0)))
	mustApply(t, s, 4, batch(t1, state.NewOp(state.TableServices, state.ActionDelete, up, 0)))

	evs, _ := s.EventsAfter(0)
	want := "service create s1 name=web\n" +
		"service update s1 image.new=nginx:2,image.old=nginx:1,name=web,replicas.new=3,replicas.old=1,updatestate.new=updating\n" +
		"service remove s1 name=web\n"
	if got := brief(evs); got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
	for _, ev := range evs {
		if ev.Scope != "swarm" || ev.Time != ev.TimeNano/1e9 {
			t.Errorf("event %+v: want scope swarm and Time the seconds of TimeNano", ev)
		}
	}
	if evs[0].TimeNano != t0.UnixNano() || evs[1].TimeNano != t1.UnixNano() {
		t.Errorf("times %d, %d: want the batches' times %d, %d", evs[0].TimeNano, evs[1].TimeNano, t0.UnixNano(), t1.UnixNano())
	}
	// The remove's batch has the update's time: it comes 1 ns later.
	if evs[2].TimeNano != t1.UnixNano()+1 {
		t.Errorf("remove at %d, want %d (strictly after the update)", evs[2].TimeNano, t1.UnixNano()+1)
	}
}

func TestEventsOfNodesSkipHeartbeats(t *testing.T) {
	s := state.NewStore()
	mustApply(t, s, 1, batch(t0, state.NewOp(state.TableNodes, state.ActionCreate, node("n1", "host-1"), 0)))
	ready := state.NodeStatus{Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0.1"}}
	for i := range 3 { // heartbeats: nothing a user sees changes
		mustApply(t, s, uint64(2+i), batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeStatus, ready)))
	}
	down := state.NodeStatus{Status: swarm.NodeStatus{State: swarm.NodeStateDown, Addr: "10.0.0.1"}}
	mustApply(t, s, 5, batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeStatus, down)))
	drained := node("n1", "host-1")
	drained.Status.State = swarm.NodeStateDown
	drained.Spec.Availability = swarm.NodeAvailabilityDrain
	mustApply(t, s, 6, batch(t1, state.NewOp(state.TableNodes, state.ActionUpdate, drained, 0)))
	mustApply(t, s, 7, batch(t1, state.NewPatch(state.TableNodes, "n1", state.PatchNodeRole, state.NodeRole{Role: swarm.NodeRoleManager})))
	mustApply(t, s, 8, batch(t1, state.NewOp(state.TableNodes, state.ActionDelete, drained, 0)))

	evs, _ := s.EventsAfter(0)
	want := "node create n1 name=host-1\n" +
		"node update n1 name=host-1,state.new=down,state.old=ready\n" +
		"node update n1 availability.new=drain,availability.old=active,name=host-1\n" +
		"node update n1 name=host-1,role.new=manager,role.old=worker\n" +
		"node remove n1 name=host-1\n"
	if got := brief(evs); got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
}

func TestEventsOfNetworksSecretsConfigs(t *testing.T) {
	s := state.NewStore()
	nw := &state.Network{}
	nw.ID, nw.Spec.Name = "w1", "backend"
	sec := &state.Secret{}
	sec.ID, sec.Spec.Name = "x1", "password"
	cfg := &state.Config{}
	cfg.ID, cfg.Spec.Name = "c1", "conf"
	mustApply(t, s, 1, batch(t0,
		state.NewOp(state.TableNetworks, state.ActionCreate, nw, 0),
		state.NewOp(state.TableSecrets, state.ActionCreate, sec, 0),
		state.NewOp(state.TableConfigs, state.ActionCreate, cfg, 0),
		state.NewOp(state.TableCluster, state.ActionCreate, cluster("k1"), 0)))
	mustApply(t, s, 2, batch(t1, state.NewOp(state.TableSecrets, state.ActionUpdate, sec, 0),
		state.NewOp(state.TableNetworks, state.ActionDelete, nw, 0)))

	evs, _ := s.EventsAfter(0)
	want := "network create w1 name=backend\n" +
		"secret create x1 name=password\n" +
		"config create c1 name=conf\n" +
		"secret update x1 name=password\n" +
		"network remove w1 name=backend\n"
	if got := brief(evs); got != want {
		t.Fatalf("events:\n%s\nwant:\n%s", got, want)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].TimeNano <= evs[i-1].TimeNano {
			t.Errorf("event %d at %d is not after event %d at %d", i, evs[i].TimeNano, i-1, evs[i-1].TimeNano)
		}
	}
}

func TestEventsAfterIsACursor(t *testing.T) {
	s := state.NewStore()
	_, wake := s.EventsAfter(0)
	mustApply(t, s, 1, batch(t0, state.NewOp(state.TableServices, state.ActionCreate, service("s1", "a", "i", 1), 0)))
	if !closed(wake) {
		t.Fatal("recording an event did not wake the waiter")
	}
	first, wake := s.EventsAfter(0)
	mustApply(t, s, 2, batch(t0, state.NewOp(state.TableTasks, state.ActionCreate, task("t1"), 0)))
	if closed(wake) {
		t.Fatal("a task write woke the event waiters; it records no event")
	}
	mustApply(t, s, 3, batch(t0, state.NewOp(state.TableServices, state.ActionCreate, service("s2", "b", "i", 1), 0)))
	rest, _ := s.EventsAfter(first[len(first)-1].TimeNano)
	if got := brief(rest); got != "service create s2 name=b\n" {
		t.Fatalf("after the first event: %q, want only the second", got)
	}
	if s.EventClock() != rest[0].TimeNano {
		t.Errorf("EventClock %d, want the newest event's %d", s.EventClock(), rest[0].TimeNano)
	}
	if evs, _ := s.EventsAfter(s.EventClock()); len(evs) != 0 {
		t.Errorf("after the clock: %d events, want none", len(evs))
	}
}

func TestRefusedBatchRecordsNoEvent(t *testing.T) {
	s := state.NewStore()
	err := s.Apply(1, batch(t0,
		state.NewOp(state.TableServices, state.ActionCreate, service("s1", "a", "i", 1), 0),
		state.NewOp(state.TableServices, state.ActionUpdate, service("missing", "b", "i", 1), 0)))
	if err == nil {
		t.Fatal("update of a missing service was applied")
	}
	if evs, _ := s.EventsAfter(0); len(evs) != 0 {
		t.Fatalf("a refused batch recorded %d events", len(evs))
	}
}

func TestEventRetentionKeepsTheNewest(t *testing.T) {
	s := state.NewStore()
	s.SetEventRetention(3)
	for i := range 5 {
		id := fmt.Sprintf("s%d", i)
		mustApply(t, s, uint64(i+1), batch(t0, state.NewOp(state.TableServices, state.ActionCreate, service(id, id, "i", 1), 0)))
	}
	evs, _ := s.EventsAfter(0)
	if got, want := brief(evs), "service create s2 name=s2\nservice create s3 name=s3\nservice create s4 name=s4\n"; got != want {
		t.Fatalf("retained:\n%s\nwant the newest three:\n%s", got, want)
	}
	if s.OldestEvent() != evs[0].TimeNano {
		t.Errorf("OldestEvent %d, want %d", s.OldestEvent(), evs[0].TimeNano)
	}
}

// A manager restored from a snapshot holds the same events, with the same
// times, as one that applied every batch: a client may switch managers.
func TestSnapshotCarriesEvents(t *testing.T) {
	a := state.NewStore()
	mustApply(t, a, 1, batch(t1, state.NewOp(state.TableServices, state.ActionCreate, service("s1", "a", "i", 1), 0)))
	var buf bytes.Buffer
	if err := a.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	b := state.NewStore()
	_, wake := b.EventsAfter(0)
	if err := b.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if !closed(wake) {
		t.Error("a restore did not wake the event waiters")
	}
	// The next batch's time is behind (a new leader's clock): both stores
	// stamp it 1 ns after the last event, as the clock came along.
	next := batch(t0, state.NewOp(state.TableServices, state.ActionCreate, service("s2", "b", "i", 1), 0))
	mustApply(t, a, 2, next)
	mustApply(t, b, 2, next)
	ea, _ := a.EventsAfter(0)
	eb, _ := b.EventsAfter(0)
	if !reflect.DeepEqual(ea, eb) {
		t.Fatalf("restored store's events differ:\n%+v\nwant\n%+v", eb, ea)
	}
	if ea[1].TimeNano != t1.UnixNano()+1 {
		t.Errorf("second event at %d, want %d", ea[1].TimeNano, t1.UnixNano()+1)
	}
}
