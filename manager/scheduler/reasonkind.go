package scheduler

import "strings"

// reasonKinds maps the phrases of explain to short, fixed labels.
var reasonKinds = []struct{ phrase, kind string }{
	{"not ready", "nodes_not_ready"},
	{"not available for new tasks", "nodes_unavailable"},
	{"missing on", "driver_missing"},
	{"scheduling constraints not satisfied", "constraints"},
	{"unsupported platform", "platform"},
	{"insufficient resources", "resources"},
	{"max replicas per node", "max_replicas"},
	{"host-mode port already in use", "host_port"},
	{"not found", "node_gone"},
}

// ReasonKind reduces an unplaced task's reason (as Place gives it, with
// node counts and names) to one short label for metrics: the filter that
// turned away the most nodes, "no_nodes" when there was no node to try,
// "other" for anything else (such as a constraint that does not parse).
func ReasonKind(reason string) string {
	first, ok := strings.CutPrefix(reason, "no suitable node (")
	if !ok {
		if reason == "no suitable node" {
			return "no_nodes"
		}
		return "other"
	}
	if i := strings.IndexAny(first, ";)"); i >= 0 {
		first = first[:i]
	}
	for _, k := range reasonKinds {
		if strings.Contains(first, k.phrase) {
			return k.kind
		}
	}
	return "other"
}
