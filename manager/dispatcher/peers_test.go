package dispatcher_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// The peers' long-poll lists the Ready nodes' hosts, answers at once
// when the caller's list is stale, waits while it is not, and wakes when
// a node goes Down.
func TestPeersFollowReadyNodes(t *testing.T) {
	s, fr, d := setup(t, "a", "b", "m")
	first := d.Peers(context.Background(), "")
	if got := strings.Join(first.Peers, ","); got != "10.0.0.1,10.0.0.2,10.0.0.4" {
		t.Fatalf("peers %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if again := d.Peers(ctx, first.Fingerprint); again.Fingerprint != first.Fingerprint {
		t.Fatalf("nothing changed, yet a new list: %v", again.Peers)
	}
	done := make(chan []string, 1)
	go func() { done <- d.Peers(context.Background(), first.Fingerprint).Peers }()
	n := s.View().Node("b")
	down := *n
	down.Status.State = swarm.NodeStateDown
	if err := fr.apply(state.Batch{Ops: []state.Op{state.NewOp(state.TableNodes, state.ActionUpdate, &down, 0)}}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-done:
		if strings.Join(got, ",") != "10.0.0.1,10.0.0.4" {
			t.Fatalf("after b went Down: %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll did not wake when a node went Down")
	}
}
