package scheduler

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// nodeOpt and taskOpt shape test fixtures.
type nodeOpt func(*state.Node)

// mkNode returns a ready, active worker named after its ID.
func mkNode(id string, opts ...nodeOpt) *state.Node {
	n := &state.Node{Role: swarm.NodeRoleWorker}
	n.ID = id
	n.Spec.Role = swarm.NodeRoleWorker
	n.Spec.Availability = swarm.NodeAvailabilityActive
	n.Description.Hostname = "host-" + id
	n.Description.Platform = swarm.Platform{OS: "linux", Architecture: "x86_64"}
	n.Status.State = swarm.NodeStateReady
	for _, o := range opts {
		o(n)
	}
	return n
}

func down(n *state.Node)    { n.Status.State = swarm.NodeStateDown }
func drained(n *state.Node) { n.Spec.Availability = swarm.NodeAvailabilityDrain }
func paused(n *state.Node)  { n.Spec.Availability = swarm.NodeAvailabilityPause }
func manager(n *state.Node) { n.Role, n.Spec.Role = swarm.NodeRoleManager, swarm.NodeRoleManager }

func label(k, v string) nodeOpt {
	return func(n *state.Node) {
		if n.Spec.Labels == nil {
			n.Spec.Labels = map[string]string{}
		}
		n.Spec.Labels[k] = v
	}
}

func engineLabel(k, v string) nodeOpt {
	return func(n *state.Node) {
		if n.Description.Engine.Labels == nil {
			n.Description.Engine.Labels = map[string]string{}
		}
		n.Description.Engine.Labels[k] = v
	}
}

func capacity(cpus float64, memMiB int64) nodeOpt {
	return func(n *state.Node) {
		n.Description.Resources = swarm.Resources{NanoCPUs: int64(cpus * 1e9), MemoryBytes: memMiB << 20}
	}
}

func drivers(names ...string) nodeOpt {
	return func(n *state.Node) {
		for _, d := range names {
			n.Description.Engine.Plugins = append(n.Description.Engine.Plugins, swarm.PluginDescription{Type: "Driver", Name: d})
		}
	}
}

func platform(os, arch string) nodeOpt {
	return func(n *state.Node) { n.Description.Platform = swarm.Platform{OS: os, Architecture: arch} }
}

type taskOpt func(*state.Task)

// mkTask returns a pending task of service svc in slot slot.
func mkTask(svc string, slot int, opts ...taskOpt) *state.Task {
	t := &state.Task{}
	t.ID = fmt.Sprintf("%s.%d", svc, slot)
	t.ServiceID = svc
	t.Slot = slot
	t.DesiredState = swarm.TaskStateRunning
	t.Status.State = swarm.TaskStatePending
	t.Spec.ContainerSpec = &swarm.ContainerSpec{Image: "busybox"}
	for _, o := range opts {
		o(t)
	}
	return t
}

// tasks returns n pending tasks of svc, slots 1..n.
func tasks(svc string, n int, opts ...taskOpt) []*state.Task {
	out := make([]*state.Task, n)
	for i := range out {
		out[i] = mkTask(svc, i+1, opts...)
	}
	return out
}

// running returns n running tasks of svc on node, slots from 1000.
func running(svc, node string, n int, opts ...taskOpt) []*state.Task {
	out := make([]*state.Task, n)
	for i := range out {
		t := mkTask(svc, 1000+i, opts...)
		t.ID = fmt.Sprintf("%s.%s.%d", svc, node, i)
		t.NodeID = node
		t.Status.State = swarm.TaskStateRunning
		out[i] = t
	}
	return out
}

func placement(t *state.Task) *swarm.Placement {
	if t.Spec.Placement == nil {
		t.Spec.Placement = &swarm.Placement{}
	}
	return t.Spec.Placement
}

func constraints(cs ...string) taskOpt {
	return func(t *state.Task) { placement(t).Constraints = cs }
}

func spread(descs ...string) taskOpt {
	return func(t *state.Task) {
		for _, d := range descs {
			placement(t).Preferences = append(placement(t).Preferences, swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: d}})
		}
	}
}

func maxReplicas(n uint64) taskOpt {
	return func(t *state.Task) { placement(t).MaxReplicas = n }
}

func reserve(cpus float64, memMiB int64) taskOpt {
	return func(t *state.Task) {
		t.Spec.Resources = &swarm.ResourceRequirements{Reservations: &swarm.Resources{NanoCPUs: int64(cpus * 1e9), MemoryBytes: memMiB << 20}}
	}
}

func driver(d string) taskOpt {
	return func(t *state.Task) { t.Spec.ContainerSpec.Labels = map[string]string{DriverLabel: d} }
}

func platforms(ps ...swarm.Platform) taskOpt {
	return func(t *state.Task) { placement(t).Platforms = ps }
}

// perNode counts placements per node ID.
func perNode(placed []Decision) map[string]int {
	m := map[string]int{}
	for _, d := range placed {
		m[d.NodeID]++
	}
	return m
}

// reasons returns the distinct reasons of unplaced tasks.
func reasons(unplaced []Unplaced) []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range unplaced {
		if !seen[u.Reason] {
			seen[u.Reason] = true
			out = append(out, u.Reason)
		}
	}
	sort.Strings(out)
	return out
}

// checkCounts fails unless placements per node equal want (nodes absent
// from want must get nothing).
func checkCounts(t *testing.T, placed []Decision, want map[string]int) {
	t.Helper()
	got := perNode(placed)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("placements per node = %v, want %v", got, want)
	}
}

func checkUnplaced(t *testing.T, unplaced []Unplaced, n int, reason string) {
	t.Helper()
	if len(unplaced) != n {
		t.Errorf("%d unplaced, want %d: %v", len(unplaced), n, unplaced)
	}
	if n > 0 {
		if got := strings.Join(reasons(unplaced), " | "); got != reason {
			t.Errorf("reason = %q, want %q", got, reason)
		}
	}
}

func concat(lists ...[]*state.Task) []*state.Task {
	var out []*state.Task
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
