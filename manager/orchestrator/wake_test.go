package orchestrator

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// A pass that puts a decision off says when it falls due, so the leader
// sleeps until then (or until the state changes) instead of passing over
// the whole state on a short tick.
func TestPassSaysWhenPutOffDecisionsFallDue(t *testing.T) {
	t.Run("nothing put off", func(t *testing.T) {
		h := newHarness(t)
		h.addNodes("n1")
		h.create(replicatedSpec("web", 2, updateCfg(1, 0, time.Second, "", "")))
		h.converge()
		if !h.o.wake.IsZero() {
			t.Errorf("a converged service with nothing pending: wake at %v, want none", h.o.wake)
		}
	})
	t.Run("restart delay", func(t *testing.T) {
		h := newHarness(t)
		_, first := oneTask(h, restart(swarm.RestartPolicyConditionAny, 10*time.Second, 0, 0))
		h.advance(time.Minute)
		h.exit(first.ID, swarm.TaskStateFailed)
		exited := h.now
		h.converge()
		if want := exited.Add(10 * time.Second); !h.o.wake.Equal(want) {
			t.Errorf("wake at %v, want the end of the restart delay %v", h.o.wake, want)
		}
	})
	t.Run("update monitor, then delay", func(t *testing.T) {
		h := newHarness(t)
		h.addNodes("n1", "n2")
		svc := h.create(replicatedSpec("web", 3, updateCfg(1, 30*time.Second, time.Second, "", "")))
		h.converge()
		h.update(svc, image("app:2"))
		batch := h.now
		h.converge()
		h.expectProgress(svc, "app:2", 1)
		if want := batch.Add(time.Second); !h.o.wake.Equal(want) {
			t.Errorf("first batch running: wake at %v, want the end of its monitor window %v", h.o.wake, want)
		}
		h.advance(time.Second)
		h.converge()
		if want := batch.Add(30 * time.Second); !h.o.wake.Equal(want) {
			t.Errorf("first batch settled: wake at %v, want the end of the update delay %v", h.o.wake, want)
		}
	})
}
