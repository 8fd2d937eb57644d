package scheduler

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

func TestSpread(t *testing.T) {
	three := []*state.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")}
	cases := []struct {
		name     string
		nodes    []*state.Node
		existing []*state.Task
		pending  []*state.Task
		want     map[string]int
	}{
		{
			name: "even", nodes: three, pending: tasks("web", 6),
			want: map[string]int{"n1": 2, "n2": 2, "n3": 2},
		},
		{
			name: "remainder goes to the lowest node IDs", nodes: three, pending: tasks("web", 7),
			want: map[string]int{"n1": 3, "n2": 2, "n3": 2},
		},
		{
			name: "existing tasks of the service are levelled first", nodes: three,
			existing: concat(running("web", "n1", 3), running("web", "n3", 1)),
			pending:  tasks("web", 4),
			want:     map[string]int{"n2": 3, "n3": 1},
		},
		{
			name: "fewest tasks overall breaks ties", nodes: three,
			existing: concat(running("db", "n1", 2), running("db", "n2", 1)),
			pending:  tasks("web", 2),
			want:     map[string]int{"n3": 1, "n2": 1},
		},
		{
			name: "service count beats total count", nodes: three,
			existing: concat(running("db", "n1", 5), running("web", "n2", 1), running("web", "n3", 1)),
			pending:  tasks("web", 1),
			want:     map[string]int{"n1": 1},
		},
		{
			name: "tasks going away do not count for spread", nodes: three,
			existing: concat(
				shutdownTasks(running("web", "n1", 3)), // desired shutdown, still running
				terminalTasks(running("web", "n2", 3)), // already complete
			),
			pending: tasks("web", 3),
			want:    map[string]int{"n1": 1, "n2": 1, "n3": 1},
		},
		{
			name: "managers run tasks too", nodes: []*state.Node{mkNode("m1", manager), mkNode("w1")},
			pending: tasks("web", 4),
			want:    map[string]int{"m1": 2, "w1": 2},
		},
		{
			name: "tasks on unknown nodes are ignored", nodes: three,
			existing: running("web", "gone", 5),
			pending:  tasks("web", 3),
			want:     map[string]int{"n1": 1, "n2": 1, "n3": 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			placed, unplaced := Schedule(Input{Nodes: tc.nodes, Tasks: tc.existing, Pending: tc.pending})
			checkCounts(t, placed, tc.want)
			checkUnplaced(t, unplaced, 0, "")
		})
	}
}

func shutdownTasks(ts []*state.Task) []*state.Task {
	for _, t := range ts {
		t.DesiredState = swarm.TaskStateShutdown
	}
	return ts
}

func terminalTasks(ts []*state.Task) []*state.Task {
	for _, t := range ts {
		t.Status.State = swarm.TaskStateComplete
		t.DesiredState = swarm.TaskStateShutdown
	}
	return ts
}

// TestFilters runs each filter on its own: which nodes get the tasks, and
// the reason a user sees when none can.
func TestFilters(t *testing.T) {
	cases := []struct {
		name     string
		nodes    []*state.Node
		existing []*state.Task
		pending  []*state.Task
		want     map[string]int
		unplaced int
		reason   string
	}{
		{
			name:    "down nodes get nothing",
			nodes:   []*state.Node{mkNode("n1", down), mkNode("n2"), mkNode("n3", down)},
			pending: tasks("web", 3),
			want:    map[string]int{"n2": 3},
		},
		{
			name:     "no ready node",
			nodes:    []*state.Node{mkNode("n1", down), mkNode("n2", down)},
			pending:  tasks("web", 2),
			unplaced: 2, reason: "no suitable node (2 nodes not ready)",
		},
		{
			name:    "drained and paused nodes get nothing",
			nodes:   []*state.Node{mkNode("n1", drained), mkNode("n2", paused), mkNode("n3")},
			pending: tasks("web", 4),
			want:    map[string]int{"n3": 4},
		},
		{
			name:     "all drained or paused, one down",
			nodes:    []*state.Node{mkNode("n1", drained), mkNode("n2", paused), mkNode("n3", down, drained)},
			pending:  tasks("web", 1),
			unplaced: 1, reason: "no suitable node (2 nodes not available for new tasks; 1 node not ready)",
		},
		{
			name:    "driver: only nodes advertising it",
			nodes:   []*state.Node{mkNode("n1", drivers("docker")), mkNode("n2", drivers("docker", "process")), mkNode("n3")},
			pending: tasks("web", 3, driver("process")),
			want:    map[string]int{"n2": 3},
		},
		{
			name:    "driver: a task naming none runs anywhere",
			nodes:   []*state.Node{mkNode("n1", drivers("docker")), mkNode("n2")},
			pending: tasks("web", 2),
			want:    map[string]int{"n1": 1, "n2": 1},
		},
		{
			name:     "driver: missing everywhere",
			nodes:    []*state.Node{mkNode("n1", drivers("docker")), mkNode("n2")},
			pending:  tasks("web", 1, driver("process")),
			unplaced: 1, reason: `no suitable node (driver "process" missing on 2 nodes)`,
		},
		{
			name:    "constraint node.role",
			nodes:   []*state.Node{mkNode("m1", manager), mkNode("w1"), mkNode("w2")},
			pending: tasks("web", 4, constraints("node.role==worker")),
			want:    map[string]int{"w1": 2, "w2": 2},
		},
		{
			name:    "constraint node.role != and upper case",
			nodes:   []*state.Node{mkNode("m1", manager), mkNode("w1")},
			pending: tasks("web", 2, constraints("node.role != WORKER")),
			want:    map[string]int{"m1": 2},
		},
		{
			name:    "constraint node.id and node.hostname",
			nodes:   []*state.Node{mkNode("n1"), mkNode("n2"), mkNode("n3")},
			pending: tasks("web", 2, constraints("node.id!=n1", "node.hostname==HOST-n3")),
			want:    map[string]int{"n3": 2},
		},
		{
			name:    "constraint node.labels: value case-insensitive, missing label fails ==",
			nodes:   []*state.Node{mkNode("n1", label("zone", "East")), mkNode("n2", label("zone", "west")), mkNode("n3")},
			pending: tasks("web", 2, constraints("node.labels.zone==east")),
			want:    map[string]int{"n1": 2},
		},
		{
			name:    "constraint node.labels: missing label passes !=",
			nodes:   []*state.Node{mkNode("n1", label("zone", "east")), mkNode("n2", label("zone", "west")), mkNode("n3")},
			pending: tasks("web", 2, constraints("node.labels.zone!=east")),
			want:    map[string]int{"n2": 1, "n3": 1},
		},
		{
			name:    "constraint node.labels: label names are case-sensitive",
			nodes:   []*state.Node{mkNode("n1", label("Zone", "east")), mkNode("n2", label("zone", "east"))},
			pending: tasks("web", 2, constraints("node.labels.zone==east")),
			want:    map[string]int{"n2": 2},
		},
		{
			name:    "constraint engine.labels",
			nodes:   []*state.Node{mkNode("n1", engineLabel("disk", "ssd")), mkNode("n2", label("disk", "ssd"))},
			pending: tasks("web", 2, constraints("engine.labels.disk==ssd")),
			want:    map[string]int{"n1": 2},
		},
		{
			name:    "constraint platform os and arch (x86_64 is amd64)",
			nodes:   []*state.Node{mkNode("n1"), mkNode("n2", platform("linux", "aarch64")), mkNode("n3", platform("windows", "amd64"))},
			pending: tasks("web", 2, constraints("node.platform.os==linux", "node.platform.arch==amd64")),
			want:    map[string]int{"n1": 2},
		},
		{
			name:     "constraints: nobody matches",
			nodes:    []*state.Node{mkNode("n1"), mkNode("n2"), mkNode("n3", down)},
			pending:  tasks("web", 2, constraints("node.labels.gpu==true")),
			unplaced: 2, reason: "no suitable node (scheduling constraints not satisfied on 2 nodes; 1 node not ready)",
		},
		{
			name:    "platforms of the image",
			nodes:   []*state.Node{mkNode("n1"), mkNode("n2", platform("linux", "arm64"))},
			pending: tasks("web", 2, platforms(swarm.Platform{OS: "linux", Architecture: "arm64"})),
			want:    map[string]int{"n2": 2},
		},
		{
			name:     "platforms: none supported",
			nodes:    []*state.Node{mkNode("n1")},
			pending:  tasks("web", 1, platforms(swarm.Platform{OS: "windows"})),
			unplaced: 1, reason: "no suitable node (unsupported platform on 1 node)",
		},
		{
			name:     "resources: exhaustion leaves tasks unplaced",
			nodes:    []*state.Node{mkNode("n1", capacity(2, 1024)), mkNode("n2", capacity(2, 1024))},
			pending:  tasks("web", 5, reserve(1, 256)),
			want:     map[string]int{"n1": 2, "n2": 2},
			unplaced: 1, reason: "no suitable node (insufficient resources on 2 nodes)",
		},
		{
			name:     "resources: memory",
			nodes:    []*state.Node{mkNode("n1", capacity(8, 1024)), mkNode("n2", capacity(8, 512))},
			pending:  tasks("web", 4, reserve(0, 512)),
			want:     map[string]int{"n1": 2, "n2": 1},
			unplaced: 1, reason: "no suitable node (insufficient resources on 2 nodes)",
		},
		{
			name:     "resources: tasks already on the node reserve theirs, even while shutting down",
			nodes:    []*state.Node{mkNode("n1", capacity(4, 4096)), mkNode("n2", capacity(4, 4096))},
			existing: concat(running("db", "n1", 3, reserve(1, 0)), shutdownTasks(running("old", "n2", 2, reserve(1, 0)))),
			pending:  tasks("web", 4, reserve(1, 0)),
			want:     map[string]int{"n1": 1, "n2": 2},
			unplaced: 1, reason: "no suitable node (insufficient resources on 2 nodes)",
		},
		{
			name:     "resources: finished tasks free theirs",
			nodes:    []*state.Node{mkNode("n1", capacity(2, 4096))},
			existing: terminalTasks(running("db", "n1", 2, reserve(1, 0))),
			pending:  tasks("web", 2, reserve(1, 0)),
			want:     map[string]int{"n1": 2},
		},
		{
			name:    "resources: a node without reported capacity takes only unreserved tasks",
			nodes:   []*state.Node{mkNode("n1"), mkNode("n2", capacity(1, 1024))},
			pending: concat(tasks("big", 1, reserve(1, 0)), tasks("small", 2)),
			want:    map[string]int{"n1": 1, "n2": 2},
		},
		{
			name:     "max replicas per node",
			nodes:    []*state.Node{mkNode("n1"), mkNode("n2")},
			existing: running("web", "n1", 1),
			pending:  tasks("web", 4, maxReplicas(2)),
			want:     map[string]int{"n1": 1, "n2": 2},
			unplaced: 1, reason: "no suitable node (max replicas per node limit reached on 2 nodes)",
		},
		{
			name: "reasons sorted by how many nodes fail",
			nodes: []*state.Node{
				mkNode("n1", capacity(1, 1024), label("zone", "a")),
				mkNode("n2", capacity(1, 1024), label("zone", "a")),
				mkNode("n3", capacity(8, 1024)), mkNode("n4", capacity(8, 1024)), mkNode("n5", capacity(8, 1024)),
			},
			pending:  tasks("web", 3, reserve(1, 0), constraints("node.labels.zone==a")),
			want:     map[string]int{"n1": 1, "n2": 1},
			unplaced: 1, reason: "no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient resources on 2 nodes)",
		},
		{
			name:     "no nodes at all",
			pending:  tasks("web", 1),
			unplaced: 1, reason: "no suitable node",
		},
		{
			name:     "invalid constraint stored on a task",
			nodes:    []*state.Node{mkNode("n1")},
			pending:  tasks("web", 1, constraints("node.role=worker")),
			unplaced: 1, reason: `no suitable node (invalid constraint "node.role=worker": expected an operator == or !=; did you mean "node.role==worker"?)`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			placed, unplaced := Schedule(Input{Nodes: tc.nodes, Tasks: tc.existing, Pending: tc.pending})
			if tc.want == nil {
				tc.want = map[string]int{}
			}
			checkCounts(t, placed, tc.want)
			checkUnplaced(t, unplaced, tc.unplaced, tc.reason)
		})
	}
}

func TestUnavailableNodesNeverChosen(t *testing.T) {
	// Whatever the load elsewhere, down, drained and paused nodes stay empty.
	nodes := []*state.Node{mkNode("a", down), mkNode("b", drained), mkNode("c", paused), mkNode("d"), mkNode("e", down, paused)}
	existing := concat(running("web", "d", 50), running("other", "d", 50))
	placed, unplaced := Schedule(Input{Nodes: nodes, Tasks: existing, Pending: tasks("web", 20)})
	checkCounts(t, placed, map[string]int{"d": 20})
	checkUnplaced(t, unplaced, 0, "")
}

func TestPreferences(t *testing.T) {
	zones := []*state.Node{
		mkNode("a1", label("zone", "a")),
		mkNode("b1", label("zone", "b")), mkNode("b2", label("zone", "b")), mkNode("b3", label("zone", "b")),
	}
	cases := []struct {
		name     string
		nodes    []*state.Node
		existing []*state.Task
		pending  []*state.Task
		want     map[string]int
		unplaced int
		reason   string
	}{
		{
			name: "two zones of 1 and 3 nodes share 8 tasks 4/4", nodes: zones,
			pending: tasks("web", 8, spread("node.labels.zone")),
			want:    map[string]int{"a1": 4, "b1": 2, "b2": 1, "b3": 1},
		},
		{
			name: "without the preference, nodes share evenly", nodes: zones,
			pending: tasks("web", 8),
			want:    map[string]int{"a1": 2, "b1": 2, "b2": 2, "b3": 2},
		},
		{
			name: "existing tasks count per zone", nodes: zones,
			existing: running("web", "b1", 3),
			pending:  tasks("web", 5, spread("node.labels.zone")),
			want:     map[string]int{"a1": 4, "b2": 1},
		},
		{
			name: "nodes without the label form their own group",
			nodes: []*state.Node{
				mkNode("a1", label("zone", "a")), mkNode("a2", label("zone", "a")),
				mkNode("b1", label("zone", "b")), mkNode("x1"), mkNode("x2"),
			},
			pending: tasks("web", 6, spread("node.labels.zone")),
			want:    map[string]int{"a1": 1, "a2": 1, "b1": 2, "x1": 1, "x2": 1},
		},
		{
			name: "engine labels",
			nodes: []*state.Node{
				mkNode("r1", engineLabel("rack", "1")), mkNode("r2", engineLabel("rack", "2")), mkNode("r3", engineLabel("rack", "2")),
			},
			pending: tasks("web", 4, spread("engine.labels.rack")),
			want:    map[string]int{"r1": 2, "r2": 1, "r3": 1},
		},
		{
			name: "nested: zone, then rack",
			nodes: []*state.Node{
				mkNode("a-r1-1", label("zone", "a"), label("rack", "1")),
				mkNode("a-r1-2", label("zone", "a"), label("rack", "1")),
				mkNode("a-r1-3", label("zone", "a"), label("rack", "1")),
				mkNode("a-r2-1", label("zone", "a"), label("rack", "2")),
				mkNode("b-r1-1", label("zone", "b"), label("rack", "1")),
			},
			pending: tasks("web", 8, spread("node.labels.zone", "node.labels.rack")),
			// zone a gets 4 (rack 1: 2 over three nodes, rack 2: 2), zone b 4.
			want: map[string]int{"a-r1-1": 1, "a-r1-2": 1, "a-r2-1": 2, "b-r1-1": 4},
		},
		{
			name: "a zone that is full overflows to the others",
			nodes: []*state.Node{
				mkNode("a1", label("zone", "a"), capacity(1, 1024)),
				mkNode("b1", label("zone", "b"), capacity(8, 1024)), mkNode("b2", label("zone", "b"), capacity(8, 1024)),
			},
			pending: tasks("web", 6, spread("node.labels.zone"), reserve(1, 0)),
			want:    map[string]int{"a1": 1, "b1": 3, "b2": 2},
		},
		{
			name: "a zone whose nodes all fail a filter still gets nothing",
			nodes: []*state.Node{
				mkNode("a1", label("zone", "a"), drained),
				mkNode("b1", label("zone", "b")), mkNode("c1", label("zone", "c"), down),
			},
			pending: tasks("web", 3, spread("node.labels.zone")),
			want:    map[string]int{"b1": 3},
		},
		{
			name: "constraints and preferences together",
			nodes: []*state.Node{
				mkNode("a1", label("zone", "a")), mkNode("a2", label("zone", "a"), manager),
				mkNode("b1", label("zone", "b")), mkNode("b2", label("zone", "b")),
			},
			pending: tasks("web", 4, spread("node.labels.zone"), constraints("node.role==worker")),
			want:    map[string]int{"a1": 2, "b1": 1, "b2": 1},
		},
		{
			name: "every zone full",
			nodes: []*state.Node{
				mkNode("a1", label("zone", "a"), capacity(1, 1024)), mkNode("b1", label("zone", "b"), capacity(1, 1024)),
			},
			pending:  tasks("web", 3, spread("node.labels.zone"), reserve(1, 0)),
			want:     map[string]int{"a1": 1, "b1": 1},
			unplaced: 1, reason: "no suitable node (insufficient resources on 2 nodes)",
		},
		{
			name: "an unsupported descriptor is skipped, as swarm does", nodes: zones,
			pending: tasks("web", 8, spread("node.hostname")),
			want:    map[string]int{"a1": 2, "b1": 2, "b2": 2, "b3": 2},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			placed, unplaced := Schedule(Input{Nodes: tc.nodes, Tasks: tc.existing, Pending: tc.pending})
			checkCounts(t, placed, tc.want)
			checkUnplaced(t, unplaced, tc.unplaced, tc.reason)
		})
	}
}

func TestGroupsOfOneService(t *testing.T) {
	// Mid-update a service has tasks of two specs: each group keeps its own
	// constraints, and the second sees where the first went.
	nodes := []*state.Node{mkNode("n1"), mkNode("n2", label("ssd", "yes")), mkNode("n3", label("ssd", "yes"))}
	pending := concat(tasks("web", 2), tasks("web", 1, constraints("node.labels.ssd==yes")))
	for i, tk := range pending {
		tk.ID = fmt.Sprintf("web.%d", i)
	}
	placed, unplaced := Schedule(Input{Nodes: nodes, Pending: pending})
	checkUnplaced(t, unplaced, 0, "")
	want := []Decision{{"web.0", "n1"}, {"web.1", "n2"}, {"web.2", "n3"}}
	if !reflect.DeepEqual(placed, want) {
		t.Errorf("placed = %v, want %v", placed, want)
	}

	// Several services in one call see each other's placements.
	placed, _ = Schedule(Input{Nodes: nodes, Pending: concat(tasks("a", 1), tasks("b", 1), tasks("c", 1))})
	checkCounts(t, placed, map[string]int{"n1": 1, "n2": 1, "n3": 1})
}

func TestPinnedTasks(t *testing.T) {
	// A global service's tasks come with their node; they are only checked.
	nodes := []*state.Node{mkNode("n1"), mkNode("n2", drained), mkNode("n3", capacity(1, 64))}
	pin := func(node string, opts ...taskOpt) *state.Task {
		tk := mkTask("global", 0, opts...)
		tk.ID, tk.NodeID = "global."+node, node
		return tk
	}
	placed, unplaced := Schedule(Input{Nodes: nodes, Pending: []*state.Task{
		pin("n1"), pin("n2"), pin("n3", reserve(2, 0)), pin("gone"),
	}})
	if want := []Decision{{TaskID: "global.n1", NodeID: "n1"}}; !reflect.DeepEqual(placed, want) {
		t.Errorf("placed = %v, want %v", placed, want)
	}
	want := []Unplaced{
		{TaskID: "global.gone", Reason: "no suitable node (node gone not found)"},
		{TaskID: "global.n2", Reason: "no suitable node (1 node not available for new tasks)"},
		{TaskID: "global.n3", Reason: "no suitable node (insufficient resources on 1 node)"},
	}
	if !reflect.DeepEqual(unplaced, want) {
		t.Errorf("unplaced = %v\nwant %v", unplaced, want)
	}
}

func TestDeterminism(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var nodes []*state.Node
	for i := range 40 {
		nodes = append(nodes, mkNode(fmt.Sprintf("node-%02d", i), label("zone", fmt.Sprint(i%3)), capacity(4, 4096)))
	}
	var existing []*state.Task
	for i := range 30 {
		existing = append(existing, running("db", fmt.Sprintf("node-%02d", rng.Intn(40)), 1+i%3)...)
	}
	for i, tk := range existing {
		tk.ID = fmt.Sprintf("db-%d", i)
	}
	pending := concat(
		tasks("web", 100, spread("node.labels.zone"), reserve(0.5, 0)),
		tasks("api", 50, constraints("node.labels.zone!=0")),
		tasks("batch", 200, reserve(1, 512)),
	)
	first, firstUn := Schedule(Input{Nodes: nodes, Tasks: existing, Pending: pending})
	if len(first)+len(firstUn) != len(pending) {
		t.Fatalf("%d placed + %d unplaced != %d pending", len(first), len(firstUn), len(pending))
	}
	for i := range 5 {
		shuffle := func(ts []*state.Task) []*state.Task {
			out := append([]*state.Task(nil), ts...)
			rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
			return out
		}
		ns := append([]*state.Node(nil), nodes...)
		rng.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
		placed, unplaced := Schedule(Input{Nodes: ns, Tasks: shuffle(existing), Pending: shuffle(pending)})
		if !reflect.DeepEqual(placed, first) || !reflect.DeepEqual(unplaced, firstUn) {
			t.Fatalf("run %d: a shuffled input gave a different result", i)
		}
	}
}

func TestTenThousandOnAThousand(t *testing.T) {
	in := bigInput(1000, 10000)
	placed, unplaced := Schedule(in)
	if len(unplaced) != 0 || len(placed) != 10000 {
		t.Fatalf("%d placed, %d unplaced", len(placed), len(unplaced))
	}
	for node, n := range perNode(placed) {
		if n != 10 {
			t.Fatalf("node %s got %d tasks, want 10 each", node, n)
		}
	}
	seen := map[string]bool{}
	for _, d := range placed {
		if seen[d.TaskID] {
			t.Fatalf("task %s placed twice", d.TaskID)
		}
		seen[d.TaskID] = true
	}
}

func TestTaskDriver(t *testing.T) {
	if d := TaskDriver(mkTask("s", 1, driver("process"))); d != "process" {
		t.Errorf("TaskDriver = %q", d)
	}
	if d := TaskDriver(mkTask("s", 1)); d != "" {
		t.Errorf("TaskDriver without label = %q", d)
	}
	tk := mkTask("s", 1)
	tk.Spec.ContainerSpec = nil
	if d := TaskDriver(tk); d != "" {
		t.Errorf("TaskDriver without container spec = %q", d)
	}
}

// bigInput is the convergence case: one service of tasks pending on
// nodes ready, active and able to run them.
func bigInput(nodes, pending int) Input {
	in := Input{}
	for i := range nodes {
		in.Nodes = append(in.Nodes, mkNode(fmt.Sprintf("node-%04d", i), capacity(2, 8192), drivers("fake"),
			label("zone", fmt.Sprint(i%3))))
	}
	for i := range pending {
		tk := mkTask("svc-bench", i+1, driver("fake"), constraints("node.role==worker"), reserve(0.01, 16))
		tk.ID = fmt.Sprintf("task-%05d", i)
		in.Pending = append(in.Pending, tk)
	}
	return in
}

func BenchmarkSchedule10kOn1k(b *testing.B) {
	in := bigInput(1000, 10000)
	benchSchedule(b, in)
}

func BenchmarkSchedule10kOn1kSpreadZones(b *testing.B) {
	in := bigInput(1000, 10000)
	for _, t := range in.Pending {
		spread("node.labels.zone")(t)
	}
	benchSchedule(b, in)
}

func BenchmarkSchedule10kOn1kManyServices(b *testing.B) {
	// 1,000 services of 10 tasks each, with 10,000 tasks already running.
	in := bigInput(1000, 0)
	for s := range 1000 {
		svc := fmt.Sprintf("svc-%04d", s)
		in.Pending = append(in.Pending, tasks(svc, 10, driver("fake"))...)
		in.Tasks = append(in.Tasks, running(svc+"-old", fmt.Sprintf("node-%04d", s), 10)...)
	}
	benchSchedule(b, in)
}

func benchSchedule(b *testing.B, in Input) {
	b.ReportAllocs()
	runs := 0
	for b.Loop() {
		placed, _ := Schedule(in)
		if len(placed) != len(in.Pending) {
			b.Fatalf("placed %d of %d", len(placed), len(in.Pending))
		}
		runs++
	}
	b.ReportMetric(float64(len(in.Pending)*runs)/b.Elapsed().Seconds(), "placements/s")
}
