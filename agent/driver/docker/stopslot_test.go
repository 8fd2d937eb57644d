package docker_test

import (
	"context"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver/docker"
)

// Stops take a slot each: with all taken, another waits until one is
// released, or until a slot's holder has had it for StopSlotHold (a
// container taking its grace period does not hold up the others).
// Releasing twice frees one slot only. No engine needed.
func TestStopSlots(t *testing.T) {
	d, err := docker.New(docker.Options{Host: "unix:///nonexistent/docker.sock", ConcurrentStops: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := t.Context()
	r1, err := d.StopSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := d.StopSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Both taken: a third waits (its context ends first).
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, err := d.StopSlot(short); err == nil {
		t.Fatal("a third slot out of two")
	}
	cancel()
	// Released (twice: once counts), one is free again, and only one.
	r1()
	r1()
	r3, err := d.StopSlot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
	if _, err := d.StopSlot(short); err == nil {
		t.Fatal("releasing one slot twice freed two")
	}
	cancel()
	// Held too long, slots free themselves.
	began := time.Now()
	deadline, cancel := context.WithTimeout(ctx, 10*docker.StopSlotHold)
	defer cancel()
	r4, err := d.StopSlot(deadline)
	if err != nil {
		t.Fatalf("no slot freed after %v: %v", time.Since(began), err)
	}
	if waited := time.Since(began); waited < docker.StopSlotHold/2 {
		t.Errorf("a slot came after %v, before any was held for %v", waited, docker.StopSlotHold)
	}
	r2()
	r3()
	r4()
}
