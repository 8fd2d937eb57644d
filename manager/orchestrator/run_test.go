package orchestrator

import (
	"context"
	"testing"
	"time"
)

// A pass that made tasks is followed at once by the pass that places
// them, though its own write also reshaped the store: with the
// coalescing wait made endless, only the kick can start that pass. Each
// round is a new service, so a kick that lost to the reshape (select
// picks at random) would show within a few rounds.
func TestRunPlacesMadeTasksAtOnce(t *testing.T) {
	h := newHarness(t)
	h.addNodes("n1", "n2")
	h.o.after = func(time.Duration) <-chan time.Time { return nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.o.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		id := h.create(replicatedSpec(name, 3))
		h.o.Kick() // as the API does after a write
		deadline := time.Now().Add(10 * time.Second)
		for placed := 0; placed < 3; {
			if time.Now().After(deadline) {
				t.Fatalf("service %s: %d of 3 tasks placed after 10s; the pass that places them never ran\n%s", name, placed, h.dump(id))
			}
			placed = 0
			for _, tk := range h.tasks(id) {
				if tk.NodeID != "" {
					placed++
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
