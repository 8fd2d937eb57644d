package orchestrator

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkIdlePass is the pass a leader runs with nothing to do (on its
// idle tick, or after a change that needs nothing): 10,000 running tasks
// of one service on 1,000 nodes.
func BenchmarkIdlePass(b *testing.B) {
	h := newHarness(b)
	for i := range 1000 {
		h.addNode(fmt.Sprintf("n%04d", i))
	}
	h.create(replicatedSpec("web", 10000))
	h.converge()
	before := h.store.Index()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := h.o.Pass(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if h.store.Index() != before {
		b.Fatalf("an idle pass wrote (index %d, was %d)", h.store.Index(), before)
	}
}
