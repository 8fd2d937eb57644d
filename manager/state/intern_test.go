package state_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// Tasks of one spec share one decoded copy of it, in the store and after
// a snapshot is restored; each task still reads back exactly as written,
// and a task whose spec differs has its own.
func TestTasksShareEqualSpecs(t *testing.T) {
	a, b, c := serviceTask("a"), serviceTask("b"), serviceTask("c")
	a.Ports = []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080}}
	b.Ports = a.Ports
	c.Spec.ContainerSpec.Env = []string{"PORT=9090"}
	s := state.NewStore()
	mustApply(t, s, 1, batch(t0,
		state.NewOp(state.TableTasks, state.ActionCreate, a, 0),
		state.NewOp(state.TableTasks, state.ActionCreate, b, 0),
		state.NewOp(state.TableTasks, state.ActionCreate, c, 0)))
	check := func(s *state.Store, when string) {
		t.Helper()
		ga, gb, gc := s.Task("a"), s.Task("b"), s.Task("c")
		if ga.Spec.ContainerSpec != gb.Spec.ContainerSpec || &ga.Ports[0] != &gb.Ports[0] {
			t.Errorf("%s: tasks a and b have equal specs but hold two copies", when)
		}
		if ga.Spec.ContainerSpec == gc.Spec.ContainerSpec {
			t.Fatalf("%s: task c's spec differs but is shared with a's", when)
		}
		for _, tc := range []struct {
			got, want *state.Task
		}{{ga, a}, {gb, b}, {gc, c}} {
			if g, w := specJSON(t, tc.got), specJSON(t, tc.want); g != w {
				t.Errorf("%s: task %s reads back\n%s\nwant\n%s", when, tc.want.ID, g, w)
			}
		}
	}
	check(s, "applied")

	// A patch of one task leaves the other's shared spec alone.
	mustApply(t, s, 2, batch(t1, statusPatch("a", swarm.TaskStateRunning)))
	check(s, "after a patch")

	var buf bytes.Buffer
	if err := s.Snapshot().Write(&buf); err != nil {
		t.Fatal(err)
	}
	r := state.NewStore()
	if err := r.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	check(r, "restored")
}

func specJSON(t *testing.T, tk *state.Task) string {
	t.Helper()
	// The whole task, but for what the store stamps on it.
	cp := *tk
	cp.Meta, cp.StatusAt, cp.Status = swarm.Meta{}, time.Time{}, swarm.TaskStatus{}
	b, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
