package raftnode

import (
	"testing"
	"time"
)

// The clock gives back the start of an entry until a later entry reuses
// its slot; then it says it does not know rather than give another's.
func TestCommitClockForgetsReusedSlots(t *testing.T) {
	var c commitClock
	before := time.Now()
	c.began(7)
	at, ok := c.startedAt(7)
	if !ok || at.Before(before) {
		t.Fatalf("startedAt(7) = %v, %v; want a time after %v", at, ok, before)
	}
	if _, ok := c.startedAt(8); ok {
		t.Error("startedAt(8) known before the FSM saw entry 8")
	}
	c.began(7 + commitRing)
	if _, ok := c.startedAt(7); ok {
		t.Error("startedAt(7) known after its slot went to a later entry")
	}
}
