package scheduler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// DriverLabel is the container label through which a task names the driver
// that must run it ("docker", "process", …). A node supports a driver when
// it lists {Type: "Driver", Name: <driver>} in Description.Engine.Plugins.
const DriverLabel = "com.flotilla.driver"

// DriverPluginType is the plugin type nodes advertise their drivers under.
const DriverPluginType = "Driver"

// TaskDriver returns the driver a task asks for, or "" when it names none
// (then any node qualifies).
func TaskDriver(t *state.Task) string {
	if t == nil || t.Spec.ContainerSpec == nil {
		return ""
	}
	return t.Spec.ContainerSpec.Labels[DriverLabel]
}

// Eligible tells whether a task of service s may run on node n at all:
// its constraints match and n offers the driver it names. The
// orchestrator asks it for global services (one task per eligible node).
func Eligible(n *state.Node, s *state.Service) bool {
	if p := s.Spec.TaskTemplate.Placement; p != nil {
		cs, err := ParseConstraints(p.Constraints)
		if err != nil || !NodeMatches(cs, n) {
			return false
		}
	}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil && cs.Labels[DriverLabel] != "" {
		return nodeHasDriver(n, cs.Labels[DriverLabel])
	}
	return true
}

// Scheduler is the placement logic as the orchestrator's one dependency.
type Scheduler struct{}

// Place implements orchestrator.Scheduler.
func (Scheduler) Place(nodes []*state.Node, assigned, pending []*state.Task) (placed, unplaced map[string]string) {
	return Place(nodes, assigned, pending)
}

// Eligible implements orchestrator.Scheduler.
func (Scheduler) Eligible(n *state.Node, s *state.Service) bool { return Eligible(n, s) }

// nodeInfo is the scheduler's running view of one node.
type nodeInfo struct {
	node    *state.Node
	ready   bool
	active  bool
	freeCPU int64 // capacity minus reservations of the tasks on the node
	freeMem int64
	total   int // active tasks on the node
	// hostPorts are the ports tasks on the node publish in host mode
	// ("8080/tcp"): a second task cannot bind them.
	hostPorts map[string]bool
}

func (ni *nodeInfo) takeHostPorts(ports []string) {
	for _, p := range ports {
		if ni.hostPorts == nil {
			ni.hostPorts = map[string]bool{}
		}
		ni.hostPorts[p] = true
	}
}

// hostPorts lists the ports a task publishes in host mode on its node.
func hostPorts(t *state.Task) []string {
	var out []string
	for _, p := range t.Ports {
		if p.PublishMode == swarm.PortConfigPublishModeHost && p.PublishedPort != 0 {
			out = append(out, fmt.Sprintf("%d/%s", p.PublishedPort, p.Protocol))
		}
	}
	return out
}

func newNodeInfo(n *state.Node) *nodeInfo {
	return &nodeInfo{
		node:    n,
		ready:   n.Status.State == swarm.NodeStateReady,
		active:  n.Spec.Availability == swarm.NodeAvailabilityActive || n.Spec.Availability == "",
		freeCPU: n.Description.Resources.NanoCPUs,
		freeMem: n.Description.Resources.MemoryBytes,
	}
}

// hasDriver reports whether the node advertises driver d.
func (ni *nodeInfo) hasDriver(d string) bool { return nodeHasDriver(ni.node, d) }

func nodeHasDriver(n *state.Node, d string) bool {
	for _, p := range n.Description.Engine.Plugins {
		if strings.EqualFold(p.Type, DriverPluginType) && p.Name == d {
			return true
		}
	}
	return false
}

// The filters, in the order they run. A node is counted against the first
// filter it fails.
const (
	filterReady = iota
	filterAvailability
	filterDriver
	filterConstraints
	filterPlatform
	filterResources
	filterMaxReplicas
	filterHostPorts
	numFilters
)

// explain returns the reason text for n nodes failing filter f.
func explain(f, n int, g *group) string {
	nodes := "nodes"
	if n == 1 {
		nodes = "node"
	}
	switch f {
	case filterReady:
		return fmt.Sprintf("%d %s not ready", n, nodes)
	case filterAvailability:
		return fmt.Sprintf("%d %s not available for new tasks", n, nodes)
	case filterDriver:
		return fmt.Sprintf("driver %q missing on %d %s", g.driver, n, nodes)
	case filterConstraints:
		return fmt.Sprintf("scheduling constraints not satisfied on %d %s", n, nodes)
	case filterPlatform:
		return fmt.Sprintf("unsupported platform on %d %s", n, nodes)
	case filterResources:
		return fmt.Sprintf("insufficient resources on %d %s", n, nodes)
	case filterMaxReplicas:
		return fmt.Sprintf("max replicas per node limit reached on %d %s", n, nodes)
	case filterHostPorts:
		return fmt.Sprintf("host-mode port already in use on %d %s", n, nodes)
	}
	return ""
}

// staticCheck runs the filters whose outcome placements within one
// Schedule call cannot change. It returns the first failing filter or -1.
func (g *group) staticCheck(ni *nodeInfo) int {
	switch {
	case !ni.ready:
		return filterReady
	case !ni.active:
		return filterAvailability
	case g.driver != "" && !ni.hasDriver(g.driver):
		return filterDriver
	case !NodeMatches(g.constraints, ni.node):
		return filterConstraints
	case !platformOK(g.platforms, ni.node):
		return filterPlatform
	}
	return -1
}

// dynamicCheck runs the filters that placements can turn from pass to fail
// (never back within one call): resources and max replicas. serviceCount is
// the node's active task count for the group's service.
func (g *group) dynamicCheck(ni *nodeInfo, serviceCount int) int {
	if (g.cpu > 0 && ni.freeCPU < g.cpu) || (g.mem > 0 && ni.freeMem < g.mem) {
		return filterResources
	}
	if g.maxReplicas > 0 && uint64(serviceCount) >= g.maxReplicas {
		return filterMaxReplicas
	}
	for _, p := range g.hostPorts {
		if ni.hostPorts[p] {
			return filterHostPorts
		}
	}
	return -1
}

// reason explains why no node can take one more task of the group, in
// docker's words, the filter failing on the most nodes first.
func (g *group) reason(nodes []*nodeInfo, serviceCounts map[*nodeInfo]int) string {
	if g.parseErr != nil {
		return "no suitable node (" + g.parseErr.Error() + ")"
	}
	var counts [numFilters]int
	for _, ni := range nodes {
		f := g.staticCheck(ni)
		if f < 0 {
			f = g.dynamicCheck(ni, serviceCounts[ni])
		}
		if f >= 0 {
			counts[f]++
		}
	}
	order := make([]int, 0, numFilters)
	for f, c := range counts {
		if c > 0 {
			order = append(order, f)
		}
	}
	if len(order) == 0 {
		return "no suitable node"
	}
	sort.SliceStable(order, func(i, j int) bool { return counts[order[i]] > counts[order[j]] })
	parts := make([]string, len(order))
	for i, f := range order {
		parts[i] = explain(f, counts[f], g)
	}
	return "no suitable node (" + strings.Join(parts, "; ") + ")"
}

// platformOK reports whether the node runs one of the platforms the task's
// image supports (no list: any platform), as swarm's platform filter.
func platformOK(platforms []swarm.Platform, n *state.Node) bool {
	if len(platforms) == 0 {
		return true
	}
	os := strings.ToLower(n.Description.Platform.OS)
	arch := normalizeArch(strings.ToLower(n.Description.Platform.Architecture))
	for _, p := range platforms {
		if (p.Architecture == "" || normalizeArch(strings.ToLower(p.Architecture)) == arch) &&
			(p.OS == "" || strings.ToLower(p.OS) == os) {
			return true
		}
	}
	return false
}

// taskCounts reports whether an assigned task reserves resources on its
// node (its observed state is not terminal) and whether it counts for
// spread and max replicas (it is also meant to keep running).
func taskCounts(t *state.Task) (reserves, active bool) {
	if terminal(t.Status.State) {
		return false, false
	}
	switch t.DesiredState {
	case swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true, false
	}
	return true, true
}

func terminal(s swarm.TaskState) bool { return state.TerminalState(s) }

// reservations returns a task spec's CPU and memory reservations.
func reservations(spec *swarm.TaskSpec) (cpu, mem int64) {
	if spec.Resources == nil || spec.Resources.Reservations == nil {
		return 0, 0
	}
	return spec.Resources.Reservations.NanoCPUs, spec.Resources.Reservations.MemoryBytes
}
