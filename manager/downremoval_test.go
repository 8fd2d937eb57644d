package manager

import (
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

func voters(ids ...string) []raft.Server {
	var out []raft.Server
	for _, id := range ids {
		out = append(out, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id + ":2377"), Suffrage: raft.Voter})
	}
	return out
}

func TestDownManagerRemovableKeepsQuorum(t *testing.T) {
	up := func(ids ...string) func(string) bool {
		return func(id string) bool {
			for _, u := range ids {
				if u == id {
					return true
				}
			}
			return false
		}
	}
	cases := []struct {
		name     string
		servers  []raft.Server
		remove   string
		leader   string
		up       func(string) bool
		removeOK bool
	}{
		{"3 managers, one down: 2 of 2 left answer", voters("a", "b", "c"), "c", "a", up("a", "b"), true},
		{"5 managers, two down: 3 of 4 left answer", voters("a", "b", "c", "d", "e"), "e", "a", up("a", "b", "c"), true},
		{"4 managers, two down: 2 of 3 left answer", voters("a", "b", "c", "d"), "d", "a", up("a", "b"), true},
		{"3 managers, only the leader answers", voters("a", "b", "c"), "c", "a", up("a"), false},
		{"5 managers, three down: 2 of 4 left answer", voters("a", "b", "c", "d", "e"), "e", "a", up("a", "b"), false},
		{"the last manager", voters("a"), "a", "", up(), false},
		{"the leader itself", voters("a", "b", "c"), "a", "a", up("a", "b", "c"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := downManagerRemovable(tc.servers, tc.remove, tc.leader, tc.up)
			if (err == nil) != tc.removeOK {
				t.Fatalf("removable = %v (%v), want %v", err == nil, err, tc.removeOK)
			}
		})
	}
	// Non-voters do not count toward the quorum.
	servers := append(voters("a", "b", "c"), raft.Server{ID: "x", Suffrage: raft.Nonvoter})
	if err := downManagerRemovable(servers, "c", "a", up("a", "x")); err == nil {
		t.Error("a non-voter was counted toward the quorum")
	}
}

func TestDownFor(t *testing.T) {
	termStart := time.Now().Add(-time.Minute)
	n := &state.Node{}
	n.Status.State = swarm.NodeStateReady
	n.StateSince = time.Now().Add(-time.Hour)
	if d := downFor(n, termStart); d != 0 {
		t.Errorf("a Ready node is down for %s, want 0", d)
	}
	n.Status.State = swarm.NodeStateDown
	n.StateSince = time.Now().Add(-10 * time.Second)
	if d := downFor(n, termStart); d < 10*time.Second || d > 20*time.Second {
		t.Errorf("down for %s, want about 10s", d)
	}
	// Down before this leader's term: the clock starts with the term.
	n.StateSince = time.Now().Add(-time.Hour)
	if d := downFor(n, termStart); d < time.Minute || d > time.Minute+10*time.Second {
		t.Errorf("down since before the term: %s, want about 1m", d)
	}
}

func TestNodeDownRemovalLabel(t *testing.T) {
	c := &state.Cluster{}
	c.Spec.Labels = map[string]string{"team": "ops"}
	if got := PublicClusterInfo(c).Spec.Labels; len(got) != 1 {
		t.Fatalf("off: labels %v, want only the user's", got)
	}
	spec := swarm.Spec{Annotations: swarm.Annotations{Labels: map[string]string{"team": "ops", NodeDownRemovalLabel: "3s"}}}
	if err := TakeNodeDownRemoval(c, &spec); err != nil {
		t.Fatal(err)
	}
	if c.NodeDownRemoval != 3*time.Second {
		t.Errorf("NodeDownRemoval = %s, want 3s", c.NodeDownRemoval)
	}
	if _, ok := spec.Labels[NodeDownRemovalLabel]; ok || spec.Labels["team"] != "ops" {
		t.Errorf("stored labels %v: the setting must leave the spec, the user's label stay", spec.Labels)
	}
	c.Spec = spec
	info := PublicClusterInfo(c)
	if info.Spec.Labels[NodeDownRemovalLabel] != "3s" || info.Spec.Labels["team"] != "ops" {
		t.Errorf("shown labels %v", info.Spec.Labels)
	}
	if _, ok := c.Spec.Labels[NodeDownRemovalLabel]; ok {
		t.Error("showing the setting wrote into the stored spec")
	}

	// An update without the label (an API client that does not know it)
	// keeps the setting.
	if err := TakeNodeDownRemoval(c, &swarm.Spec{}); err != nil || c.NodeDownRemoval != 3*time.Second {
		t.Errorf("update without the label: %v, NodeDownRemoval %s, want kept at 3s", err, c.NodeDownRemoval)
	}
	for _, off := range []string{"0", "0s", "off"} {
		c.NodeDownRemoval = time.Hour
		s := swarm.Spec{Annotations: swarm.Annotations{Labels: map[string]string{NodeDownRemovalLabel: off}}}
		if err := TakeNodeDownRemoval(c, &s); err != nil || c.NodeDownRemoval != 0 || s.Labels != nil {
			t.Errorf("%q: err %v, NodeDownRemoval %s, labels %v; want off", off, err, c.NodeDownRemoval, s.Labels)
		}
	}
	for _, bad := range []string{"-1s", "soon", "5"} {
		c.NodeDownRemoval = time.Hour
		s := swarm.Spec{Annotations: swarm.Annotations{Labels: map[string]string{NodeDownRemovalLabel: bad}}}
		err := TakeNodeDownRemoval(c, &s)
		if !errdefs.Is(err, errdefs.KindInvalid) || c.NodeDownRemoval != time.Hour {
			t.Errorf("%q: err %v, NodeDownRemoval %s; want an invalid-argument error and no change", bad, err, c.NodeDownRemoval)
		}
	}
}

func TestValidClusterAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.2:4000": true, "[::1]:2377": true, "10.0.0.1": false, "0.0.0.0:2377": false,
		"host.example:2377": false, "10.0.0.1:0": false, "10.0.0.1:70000": false, "": false,
	} {
		if got := validClusterAddr(addr); got != want {
			t.Errorf("validClusterAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
