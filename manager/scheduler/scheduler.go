// Package scheduler places tasks on nodes. It is pure: read-only cluster
// state in, placements out; no goroutines, no store, no Raft. The caller
// (the leader's scheduling loop) gathers the input from the state store and
// commits the decisions in batches.
//
// # Filters
//
// A node can take a task when it passes, in order: Ready (Status.State is
// ready), Active (availability active; pause and drain get no new tasks),
// driver (the task's com.flotilla.driver label names a driver the node
// advertises in Description.Engine.Plugins as {Type: "Driver"}), constraints
// (swarm's syntax, see ParseConstraints), platform (Placement.Platforms, when
// set), resources (the task's reservations fit the node's capacity minus the
// reservations of the tasks already on it) and max replicas (fewer than
// Placement.MaxReplicas tasks of the service on the node). A task no node
// can take is returned as Unplaced with docker's kind of reason, counting
// each node against the first filter it fails:
//
//	no suitable node (scheduling constraints not satisfied on 3 nodes; insufficient resources on 2 nodes)
//
// # Spread
//
// Among the nodes that pass, a task goes to the node with the fewest active
// tasks of its service, then the fewest active tasks overall, then the
// lowest node ID, so the output is the same for the same input. Placement
// preferences (spread=node.labels.zone, spread=engine.labels.rack) first
// balance the service's tasks across the label's values, nodes without the
// label forming a group of their own, nested in the order given, as in
// swarmkit: tasks fill the group with the fewest tasks of the service that
// still has room, then, inside it, the next level, down to the nodes.
//
// # Cost
//
// Pending tasks are grouped by service and by the parts of their spec that
// placement reads (constraints, preferences, reservations, driver, …), so
// the filters that placements cannot change run once per node per group, not
// per task. Each group keeps its candidate nodes in a min-heap keyed by
// (tasks of the service, tasks overall, node ID), and with preferences one
// heap per label value and a heap of label values per level. Placing a task
// is O(depth × log n); a node that fails resources or max replicas is dropped
// from the heap (more placements can only make it fail again). Scheduling
// 10,000 tasks on 1,000 nodes takes a few milliseconds.
//
// Assigned tasks (Input.Tasks) reserve their resources while their observed
// state is not terminal, and count for spread and max replicas while their
// desired state is also not shutdown (or later), as in swarmkit.
package scheduler

import (
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// Input is the read-only state one scheduling pass works from.
type Input struct {
	// Nodes are the cluster's nodes, in any order.
	Nodes []*state.Node
	// Tasks are the non-terminal tasks assigned to a node; they count for
	// spread, max replicas and resources.
	Tasks []*state.Task
	// Pending are the tasks to place. Their NodeID is normally empty; a
	// task whose NodeID is set (a global service's task) is only checked
	// against that node and placed there if it fits.
	Pending []*state.Task
}

// Decision assigns a task to a node.
type Decision struct {
	TaskID, NodeID string
}

// Unplaced is a task no node can take, and why, in docker's words.
type Unplaced struct {
	TaskID string
	Reason string
}

// Schedule places the pending tasks. Placements within one call see each
// other: a node that takes a task has that task counted for the next. The
// result depends only on the input's content, not on its order.
func Schedule(in Input) (placed []Decision, unplaced []Unplaced) {
	s := newSched(in)
	placed = make([]Decision, 0, len(in.Pending))

	var pinned []*state.Task
	groups := map[string]*group{}
	for _, t := range in.Pending {
		if t == nil {
			continue
		}
		if t.NodeID != "" {
			pinned = append(pinned, t)
			continue
		}
		key := groupKey(t)
		g := groups[key]
		if g == nil {
			g = newGroup(key, t)
			groups[key] = g
		}
		g.tasks = append(g.tasks, t)
	}

	// Pinned tasks first: they have nowhere else to go.
	sortTasks(pinned)
	for _, t := range pinned {
		g := newGroup("", t)
		ni := s.byID[t.NodeID]
		if ni == nil {
			unplaced = append(unplaced, Unplaced{TaskID: t.ID, Reason: "no suitable node (node " + t.NodeID + " not found)"})
			continue
		}
		counts := s.serviceCounts(g.serviceID)
		if g.parseErr == nil && g.staticCheck(ni) < 0 && g.dynamicCheck(ni, counts[ni]) < 0 {
			s.assign(g, ni, counts)
			placed = append(placed, Decision{TaskID: t.ID, NodeID: ni.node.ID})
			continue
		}
		unplaced = append(unplaced, Unplaced{TaskID: t.ID, Reason: g.reason([]*nodeInfo{ni}, counts)})
	}

	ordered := make([]*group, 0, len(groups))
	for _, g := range groups {
		ordered = append(ordered, g)
	}
	sort.Slice(ordered, func(i, j int) bool {
		if ordered[i].serviceID != ordered[j].serviceID {
			return ordered[i].serviceID < ordered[j].serviceID
		}
		return ordered[i].key < ordered[j].key
	})
	for _, g := range ordered {
		sortTasks(g.tasks)
		n := 0
		if g.parseErr == nil {
			counts := s.serviceCounts(g.serviceID)
			root := s.tree(g, counts)
			for _, t := range g.tasks {
				ni := root.place(s, g, counts)
				if ni == nil {
					break
				}
				placed = append(placed, Decision{TaskID: t.ID, NodeID: ni.node.ID})
				n++
			}
		}
		if n < len(g.tasks) {
			reason := g.reason(s.nodes, s.svc[g.serviceID])
			for _, t := range g.tasks[n:] {
				unplaced = append(unplaced, Unplaced{TaskID: t.ID, Reason: reason})
			}
		}
	}
	return placed, unplaced
}

// sched is the running state of one Schedule call.
type sched struct {
	nodes []*nodeInfo // sorted by node ID
	byID  map[string]*nodeInfo
	// svc counts the active tasks of each service per node.
	svc map[string]map[*nodeInfo]int
	// eligible caches, per static key, the nodes passing the static filters.
	eligible map[string][]*nodeInfo
	// scratch is the candidate heap of groups without preferences, reused
	// from group to group.
	scratch []leafItem
}

func newSched(in Input) *sched {
	s := &sched{
		byID:     make(map[string]*nodeInfo, len(in.Nodes)),
		svc:      map[string]map[*nodeInfo]int{},
		eligible: map[string][]*nodeInfo{},
	}
	for _, n := range in.Nodes {
		if n == nil || n.ID == "" || s.byID[n.ID] != nil {
			continue
		}
		ni := newNodeInfo(n)
		s.byID[n.ID] = ni
		s.nodes = append(s.nodes, ni)
	}
	sort.Slice(s.nodes, func(i, j int) bool { return s.nodes[i].node.ID < s.nodes[j].node.ID })
	for _, t := range in.Tasks {
		if t == nil {
			continue
		}
		ni := s.byID[t.NodeID]
		if ni == nil {
			continue
		}
		reserves, active := taskCounts(t)
		if reserves {
			cpu, mem := reservations(&t.Spec)
			ni.freeCPU -= cpu
			ni.freeMem -= mem
			ni.takeHostPorts(hostPorts(t))
		}
		if active {
			ni.total++
			s.serviceCounts(t.ServiceID)[ni]++
		}
	}
	return s
}

func (s *sched) serviceCounts(serviceID string) map[*nodeInfo]int {
	m := s.svc[serviceID]
	if m == nil {
		m = map[*nodeInfo]int{}
		s.svc[serviceID] = m
	}
	return m
}

// assign accounts for one more task of group g on node ni.
func (s *sched) assign(g *group, ni *nodeInfo, counts map[*nodeInfo]int) {
	ni.freeCPU -= g.cpu
	ni.freeMem -= g.mem
	ni.takeHostPorts(g.hostPorts)
	ni.total++
	counts[ni]++
}

// eligibleNodes returns the nodes passing g's static filters, sorted by ID.
func (s *sched) eligibleNodes(g *group) []*nodeInfo {
	if e, ok := s.eligible[g.staticKey]; ok {
		return e
	}
	var e []*nodeInfo
	for _, ni := range s.nodes {
		if g.staticCheck(ni) < 0 {
			e = append(e, ni)
		}
	}
	s.eligible[g.staticKey] = e
	return e
}

// group is a set of pending tasks that placement cannot tell apart.
type group struct {
	key, staticKey string
	serviceID      string
	tasks          []*state.Task

	constraints []Constraint
	parseErr    error
	prefs       []spreadPref
	platforms   []swarm.Platform
	maxReplicas uint64
	cpu, mem    int64
	driver      string
	hostPorts   []string // published in host mode: one task per node
}

type spreadPref struct {
	engine bool
	label  string
}

func newGroup(key string, t *state.Task) *group {
	g := &group{key: key, serviceID: t.ServiceID, driver: TaskDriver(t), hostPorts: hostPorts(t)}
	g.cpu, g.mem = reservations(&t.Spec)
	var constraints []string
	if p := t.Spec.Placement; p != nil {
		constraints = p.Constraints
		g.maxReplicas = p.MaxReplicas
		g.platforms = p.Platforms
		for _, pref := range p.Preferences {
			if pref.Spread == nil {
				continue
			}
			// Like swarmkit, skip descriptors it cannot spread over
			// (ValidatePreferences refuses them at the API).
			if engine, label, ok := spreadLabel(pref.Spread.SpreadDescriptor); ok {
				g.prefs = append(g.prefs, spreadPref{engine: engine, label: label})
			}
		}
	}
	g.constraints, g.parseErr = ParseConstraints(constraints)
	var b strings.Builder
	b.WriteString(g.driver)
	for _, c := range constraints {
		b.WriteByte(0)
		b.WriteString(c)
	}
	for _, p := range g.platforms {
		b.WriteByte(1)
		b.WriteString(p.OS)
		b.WriteByte('/')
		b.WriteString(p.Architecture)
	}
	g.staticKey = b.String()
	return g
}

// groupKey returns what tells placement groups apart: the service and
// every spec field placement reads.
func groupKey(t *state.Task) string {
	var b strings.Builder
	b.Grow(64)
	b.WriteString(t.ServiceID)
	b.WriteByte(0)
	b.WriteString(TaskDriver(t))
	cpu, mem := reservations(&t.Spec)
	for _, p := range hostPorts(t) {
		b.WriteByte(4)
		b.WriteString(p)
	}
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(cpu, 10))
	b.WriteByte(0)
	b.WriteString(strconv.FormatInt(mem, 10))
	if p := t.Spec.Placement; p != nil {
		b.WriteByte(0)
		b.WriteString(strconv.FormatUint(p.MaxReplicas, 10))
		for _, c := range p.Constraints {
			b.WriteByte(1)
			b.WriteString(c)
		}
		for _, pr := range p.Preferences {
			b.WriteByte(2)
			if pr.Spread != nil {
				b.WriteString(pr.Spread.SpreadDescriptor)
			}
		}
		for _, pl := range p.Platforms {
			b.WriteByte(3)
			b.WriteString(pl.OS)
			b.WriteByte('/')
			b.WriteString(pl.Architecture)
		}
	}
	return b.String()
}

// sortTasks orders tasks by service, slot, then ID, so low slots are placed
// first and the output does not depend on the input's order.
func sortTasks(ts []*state.Task) {
	sort.Slice(ts, func(i, j int) bool {
		a, b := ts[i], ts[j]
		if a.ServiceID != b.ServiceID {
			return a.ServiceID < b.ServiceID
		}
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		return a.ID < b.ID
	})
}

// branch is a node of the decision tree: one value of a spread preference
// at its level, or (a leaf) the candidate nodes under the full path.
type branch struct {
	parent *branch
	value  string
	tasks  int // active tasks of the service on every node under the branch
	idx    int // position in parent.open

	children map[string]*branch // while building
	open     []*branch          // children with room: heap by (tasks, value)
	leaf     []leafItem         // leaf only: heap by (service tasks, total tasks, ID)
	isLeaf   bool
}

type leafItem struct {
	ni  *nodeInfo
	svc int
}

// tree builds the decision tree for g: every node's tasks of the service
// count on its path (as in swarmkit, whether or not the node can take more),
// the nodes passing the static filters are the leaves' candidates.
func (s *sched) tree(g *group, counts map[*nodeInfo]int) *branch {
	root := &branch{isLeaf: len(g.prefs) == 0}
	leafOf := func(ni *nodeInfo) *branch {
		b := root
		for _, p := range g.prefs {
			var v string
			if p.engine {
				v = ni.node.Description.Engine.Labels[p.label]
			} else {
				v = ni.node.Spec.Labels[p.label]
			}
			if b.children == nil {
				b.children = map[string]*branch{}
			}
			c := b.children[v]
			if c == nil {
				c = &branch{parent: b, value: v}
				b.children[v] = c
			}
			b = c
		}
		b.isLeaf = true
		return b
	}
	if len(g.prefs) > 0 {
		// Every node shapes the tree, so groups whose nodes cannot take
		// the task still hold their share of the service's tasks.
		for _, ni := range s.nodes {
			leafOf(ni)
		}
		for ni, c := range counts {
			for b := leafOf(ni); b != nil; b = b.parent {
				b.tasks += c
			}
		}
	}
	eligible := s.eligibleNodes(g)
	if root.isLeaf {
		// One heap of every candidate: reuse the previous group's.
		if cap(s.scratch) < len(eligible) {
			s.scratch = make([]leafItem, 0, len(eligible))
		}
		root.leaf = s.scratch[:0]
	}
	for _, ni := range eligible {
		b := leafOf(ni)
		b.leaf = append(b.leaf, leafItem{ni: ni, svc: counts[ni]})
	}
	root.finish()
	return root
}

// finish turns the built tree into heaps; it reports whether the branch
// has any candidate node.
func (b *branch) finish() bool {
	if b.isLeaf {
		for i := len(b.leaf)/2 - 1; i >= 0; i-- {
			b.leafDown(i)
		}
		return len(b.leaf) > 0
	}
	values := make([]string, 0, len(b.children))
	for v := range b.children {
		values = append(values, v)
	}
	sort.Strings(values)
	for _, v := range values {
		c := b.children[v]
		if c.finish() {
			c.idx = len(b.open)
			b.open = append(b.open, c)
		}
	}
	b.children = nil
	for i := len(b.open)/2 - 1; i >= 0; i-- {
		b.branchDown(i)
	}
	return len(b.open) > 0
}

// place picks the node for one more task of g and accounts for it, or
// returns nil when no node can take it.
func (root *branch) place(s *sched, g *group, counts map[*nodeInfo]int) *nodeInfo {
	for {
		b := root
		for !b.isLeaf {
			if len(b.open) == 0 {
				return nil
			}
			b = b.open[0]
		}
		for len(b.leaf) > 0 {
			it := &b.leaf[0]
			if g.dynamicCheck(it.ni, it.svc) >= 0 {
				// Resources and max replicas only get worse as
				// tasks are added: drop the node for this group.
				last := len(b.leaf) - 1
				b.leaf[0] = b.leaf[last]
				b.leaf = b.leaf[:last]
				b.leafDown(0)
				continue
			}
			ni := it.ni
			s.assign(g, ni, counts)
			it.svc++
			b.leafDown(0)
			for c := b; c != nil; c = c.parent {
				c.tasks++
				if c.parent != nil {
					c.parent.branchDown(c.idx)
				}
			}
			return ni
		}
		if b == root {
			return nil
		}
		// The leaf is full: close it, and every ancestor left empty.
		for c := b; c.parent != nil; c = c.parent {
			p := c.parent
			p.removeOpen(c.idx)
			if len(p.open) > 0 {
				break
			}
		}
	}
}

func leafLess(a, b leafItem) bool {
	if a.svc != b.svc {
		return a.svc < b.svc
	}
	if a.ni.total != b.ni.total {
		return a.ni.total < b.ni.total
	}
	return a.ni.node.ID < b.ni.node.ID
}

func (b *branch) leafDown(i int) {
	h := b.leaf
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && leafLess(h[r], h[l]) {
			m = r
		}
		if !leafLess(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func branchLess(a, b *branch) bool {
	if a.tasks != b.tasks {
		return a.tasks < b.tasks
	}
	return a.value < b.value
}

func (b *branch) swapOpen(i, j int) {
	b.open[i], b.open[j] = b.open[j], b.open[i]
	b.open[i].idx = i
	b.open[j].idx = j
}

// branchDown restores the heap after open[i]'s key grew.
func (b *branch) branchDown(i int) {
	h := b.open
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && branchLess(h[r], h[l]) {
			m = r
		}
		if !branchLess(h[m], h[i]) {
			return
		}
		b.swapOpen(i, m)
		i = m
	}
}

func (b *branch) branchUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !branchLess(b.open[i], b.open[p]) {
			return
		}
		b.swapOpen(i, p)
		i = p
	}
}

// removeOpen removes open[i] from the heap.
func (b *branch) removeOpen(i int) {
	last := len(b.open) - 1
	if i != last {
		b.swapOpen(i, last)
	}
	b.open = b.open[:last]
	if i < last {
		b.branchDown(i)
		b.branchUp(i)
	}
}

// Place is Schedule in the shape the orchestrator takes: task ID → node
// ID for the placed tasks, task ID → reason for the others.
func Place(nodes []*state.Node, assigned, pending []*state.Task) (placed, unplaced map[string]string) {
	decisions, left := Schedule(Input{Nodes: nodes, Tasks: assigned, Pending: pending})
	placed = make(map[string]string, len(decisions))
	for _, d := range decisions {
		placed[d.TaskID] = d.NodeID
	}
	unplaced = make(map[string]string, len(left))
	for _, u := range left {
		unplaced[u.TaskID] = u.Reason
	}
	return placed, unplaced
}
