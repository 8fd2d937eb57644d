package scheduler

import "testing"

func TestReasonKind(t *testing.T) {
	for reason, want := range map[string]string{
		"no suitable node": "no_nodes",
		"no suitable node (3 nodes not available for new tasks; 1 node not ready)": "nodes_unavailable",
		"no suitable node (1 node not ready)":                                      "nodes_not_ready",
		`no suitable node (driver "docker" missing on 2 nodes)`:                    "driver_missing",
		"no suitable node (scheduling constraints not satisfied on 4 nodes)":       "constraints",
		"no suitable node (insufficient resources on 1 node)":                      "resources",
		"no suitable node (max replicas per node limit reached on 2 nodes)":        "max_replicas",
		"no suitable node (host-mode port already in use on 1 node)":               "host_port",
		"no suitable node (unsupported platform on 1 node)":                        "platform",
		"no suitable node (node abc not found)":                                    "node_gone",
		`no suitable node (constraint "node.labels.x ~ y": unsupported operator)`:  "other",
		"something else entirely":                                                  "other",
	} {
		if got := ReasonKind(reason); got != want {
			t.Errorf("ReasonKind(%q) = %q, want %q", reason, got, want)
		}
	}
}

// Every reason explain gives has a kind of its own.
func TestReasonKindCoversExplain(t *testing.T) {
	g := &group{driver: "docker"}
	for f := range numFilters {
		reason := "no suitable node (" + explain(f, 2, g) + ")"
		if k := ReasonKind(reason); k == "other" || k == "no_nodes" {
			t.Errorf("filter %d: %q has no kind of its own (got %q)", f, reason, k)
		}
	}
}
