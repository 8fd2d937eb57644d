//go:build unix

package sandbox

import (
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// Down waits for the tasks of the sandbox's own nodes only: a task on a
// node it did not start (a bench's simulated node, gone) or on none
// (pending) is not waited for; with its nodes unknown it waits for all.
func TestDownWaitsForOwnNodesTasks(t *testing.T) {
	own := map[string]bool{"m1": true, "w1": true}
	cases := []struct {
		tasks []swarm.Task
		own   map[string]bool
		want  bool
	}{
		{nil, own, false},
		{[]swarm.Task{{NodeID: "sim-1"}, {NodeID: ""}}, own, false},
		{[]swarm.Task{{NodeID: "sim-1"}, {NodeID: "w1"}}, own, true},
		{[]swarm.Task{{NodeID: "sim-1"}}, nil, true},
	}
	for i, c := range cases {
		if got := anyOn(c.tasks, c.own); got != c.want {
			t.Errorf("case %d: anyOn = %v, want %v", i, got, c.want)
		}
	}
}
