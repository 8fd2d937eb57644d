package dispatcher_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// A beat without a description means "unchanged": it writes nothing for
// a Ready node and leaves its description as it was.
// A changed description is written, engine labels included, and a bare
// beat right after it does not undo it.
func TestBeatsWithoutDescription(t *testing.T) {
	s, fr, d := setup(t, "a", "b")
	d.Heartbeat("a", addr("a"), nil)
	relabeled := desc("host-b")
	relabeled.Engine.Labels = map[string]string{"zone": "east"}
	d.Heartbeat("b", addr("b"), &relabeled)
	d.Heartbeat("b", addr("b"), nil)
	run(t, d)
	waitFor(t, 5*time.Second, func() error {
		if got := s.Node("b").Description.Engine.Labels["zone"]; got != "east" {
			return fmt.Errorf("node b's engine label zone=%q, want east", got)
		}
		return nil
	})
	for _, b := range fr.proposed() {
		for _, op := range b.Ops {
			if op.ID == "a" {
				t.Errorf("a bare beat of a Ready node wrote %s", op.Object)
			}
		}
	}
	if got := s.Node("a").Description; nodeapi.DescriptionHash(got) != nodeapi.DescriptionHash(desc("host-a")) {
		t.Errorf("node a's description changed to %+v", got)
	}
}

// The hash a manager answers is the node's own hash of the same
// description, and any reported field changes it.
func TestDescriptionHash(t *testing.T) {
	base := desc("host-a")
	same := desc("host-a")
	if nodeapi.DescriptionHash(base) != nodeapi.DescriptionHash(same) {
		t.Fatal("equal descriptions hash differently")
	}
	for name, change := range map[string]func(*swarm.NodeDescription){
		"hostname":     func(d *swarm.NodeDescription) { d.Hostname = "other" },
		"memory":       func(d *swarm.NodeDescription) { d.Resources.MemoryBytes++ },
		"engine label": func(d *swarm.NodeDescription) { d.Engine.Labels = map[string]string{"k": "v"} },
		"plugin": func(d *swarm.NodeDescription) {
			d.Engine.Plugins = append(d.Engine.Plugins, swarm.PluginDescription{Type: "Driver", Name: "x"})
		},
		"architecture": func(d *swarm.NodeDescription) { d.Platform.Architecture = "aarch64" },
	} {
		d := desc("host-a")
		change(&d)
		if nodeapi.DescriptionHash(d) == nodeapi.DescriptionHash(base) {
			t.Errorf("a changed %s leaves the hash as it was", name)
		}
	}
}
