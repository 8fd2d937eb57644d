package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestInitJoinAndNodeList forms a swarm of 3 managers and 2 workers through
// the CLI (init, join of both roles) and checks what `node ls` and `info`
// print. Everything here only reads, so it shares one cluster.
func TestInitJoinAndNodeList(t *testing.T) {
	c := newCluster(t, 3, 2)
	var ids []string
	for _, n := range c.nodes {
		ids = append(ids, n.id)
	}
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatalf("node IDs are not distinct: %v", ids)
	}

	t.Run("table", func(t *testing.T) {
		for _, m := range c.managers {
			checkNodeTable(t, c, m, m.mustCLI(t, "node", "ls"))
		}
	})

	t.Run("quiet", func(t *testing.T) {
		out := c.managers[1].mustCLI(t, "node", "ls", "-q")
		got := strings.Fields(out)
		slices.Sort(got)
		if !slices.Equal(got, ids) {
			t.Errorf("node ls -q printed %q, want the 5 IDs %v", out, ids)
		}
	})

	t.Run("format", func(t *testing.T) {
		m := c.managers[2]
		out := m.mustCLI(t, "node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}")
		leader, err := c.leader(m)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, n := range c.nodes {
			switch {
			case n == leader:
				want = append(want, n.name+" Leader")
			case c.isManager(n):
				want = append(want, n.name+" Reachable")
			default:
				want = append(want, n.name)
			}
		}
		var got []string
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			got = append(got, strings.TrimRight(l, " "))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("node ls --format '{{.Hostname}} {{.ManagerStatus}}' printed\n%s\nwant (in any order) %q", out, want)
		}
	})

	t.Run("filter", func(t *testing.T) {
		m := c.managers[0]
		for _, tc := range []struct {
			filter string
			want   []*node
		}{
			{"role=manager", c.managers},
			{"role=worker", c.workers},
			{"name=w2", []*node{c.node("w2")}},
		} {
			rows, err := m.rows("--filter", tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got, want []string
			for _, r := range rows {
				got = append(got, r.ID)
			}
			for _, n := range tc.want {
				want = append(want, n.id)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("node ls --filter %s listed %v, want %v", tc.filter, rows, tc.want)
			}
			// The table form too: a header and one line per node.
			out := m.mustCLI(t, "node", "ls", "--filter", tc.filter)
			if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); len(lines) != len(tc.want)+1 {
				t.Errorf("node ls --filter %s printed %d lines, want a header and %d nodes:\n%s", tc.filter, len(lines), len(tc.want), out)
			}
		}
	})

	t.Run("info", func(t *testing.T) {
		for _, n := range c.nodes {
			out := n.mustCLI(t, "info")
			want := []string{"Swarm: active", "NodeID: " + n.id}
			if c.isManager(n) {
				want = append(want, "Is Manager: true", "Managers: 3", "Nodes: 5")
			} else {
				want = append(want, "Is Manager: false")
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("info on %s does not say %q:\n%s", n, w, out)
				}
			}
		}
	})

	t.Run("worker cannot list nodes", func(t *testing.T) {
		_, stderr, err := c.workers[0].CLI("node", "ls")
		if err == nil {
			t.Fatal("node ls on a worker succeeded")
		}
		if !containsAny(stderr, "not a swarm manager", "manager node") {
			t.Errorf("node ls on a worker: unclear error %q", stderr)
		}
	})
}

// checkNodeTable checks `node ls` as run on via: docker's header and
// tabwriter layout (minimum width 10, padding 3), every node once with its
// ID, Ready and Active, one Leader and the other managers Reachable, and
// " *" after via's own ID only.
func checkNodeTable(t *testing.T, c *cluster, via *node, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	header := lines[0]
	cols := []string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"}
	if got := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(header), -1); !slices.Equal(got, cols) {
		t.Fatalf("node ls on %s: header %q, want columns %q", via, header, cols)
	}
	starts := make([]int, len(cols))
	from := 0
	for i, col := range cols {
		starts[i] = from + strings.Index(header[from:], col)
		from = starts[i] + len(col)
	}
	rows := lines[1:]
	if len(rows) != len(c.nodes) {
		t.Fatalf("node ls on %s printed %d nodes, want %d:\n%s", via, len(rows), len(c.nodes), out)
	}
	cells := make([][]string, len(rows))
	widest := make([]int, len(cols))
	for i, col := range cols {
		widest[i] = len(col)
	}
	for r, line := range rows {
		for i := range cols {
			end := len(line)
			if i+1 < len(cols) {
				end = min(starts[i+1], len(line))
			}
			cell := ""
			if starts[i] < len(line) {
				cell = strings.TrimRight(line[starts[i]:end], " ")
			}
			if strings.HasPrefix(cell, " ") || (i > 0 && starts[i] <= len(line) && starts[i] > 0 && line[starts[i]-1] != ' ') {
				t.Errorf("node ls on %s: row %q is not aligned with the header %q (column %s)", via, line, header, cols[i])
			}
			cells[r] = append(cells[r], cell)
			widest[i] = max(widest[i], len(cell))
		}
	}
	for i := 0; i+1 < len(cols); i++ {
		if got, want := starts[i+1]-starts[i], max(10, widest[i]+3); got != want {
			t.Errorf("node ls on %s: column %s is %d wide, docker's tabwriter (min width 10, padding 3) makes it %d:\n%s", via, cols[i], got, want, out)
		}
	}

	seen := map[string]bool{}
	selfRows, leaders, reachable := 0, 0, 0
	for r, cell := range cells {
		id, self := strings.CutSuffix(cell[0], " *")
		host := cell[1]
		n := c.node(host)
		if seen[host] {
			t.Errorf("node ls on %s lists %s twice", via, host)
		}
		seen[host] = true
		if id != n.id {
			t.Errorf("node ls on %s: %s has ID %q, want %q", via, host, id, n.id)
		}
		if self {
			selfRows++
		}
		if self != (n == via) {
			t.Errorf("node ls on %s: row %q: ' *' after the ID must mark the local node (%s) only", via, rows[r], via.id)
		}
		if cell[2] != "Ready" || cell[3] != "Active" {
			t.Errorf("node ls on %s: %s is %s/%s, want Ready/Active", via, host, cell[2], cell[3])
		}
		switch ms := cell[4]; {
		case c.isManager(n) && ms == "Leader":
			leaders++
		case c.isManager(n) && ms == "Reachable":
			reachable++
		case c.isManager(n):
			t.Errorf("node ls on %s: manager %s has MANAGER STATUS %q", via, host, ms)
		case ms != "":
			t.Errorf("node ls on %s: worker %s has MANAGER STATUS %q", via, host, ms)
		}
		if cell[5] == "" {
			t.Errorf("node ls on %s: %s has no ENGINE VERSION", via, host)
		}
	}
	if selfRows != 1 || leaders != 1 || reachable != len(c.managers)-1 {
		t.Errorf("node ls on %s: %d rows marked *, %d Leader, %d Reachable; want 1, 1, %d:\n%s",
			via, selfRows, leaders, reachable, len(c.managers)-1, out)
	}
}

// TestJoinWithFirstManagerDown joins a worker and a manager with a list of
// managers whose first entry is dead: the join must go on to the next.
func TestJoinWithFirstManagerDown(t *testing.T) {
	c := newCluster(t, 3, 0)
	m1, m2, m3 := c.managers[0], c.managers[1], c.managers[2]
	m1.Kill9()
	// Let the survivors settle on a leader, so the join tests the address
	// list and not the election.
	eventually(t, convergeTimeout, rowsMatch(m2, func(m map[string]nodeRow) error {
		if m["m2"].ManagerStatus != "Leader" && m["m3"].ManagerStatus != "Leader" {
			return fmt.Errorf("no leader among m2, m3")
		}
		return nil
	}))
	workerToken := strings.TrimSpace(m2.mustCLI(t, "swarm", "join-token", "-q", "worker"))
	managerToken := strings.TrimSpace(m2.mustCLI(t, "swarm", "join-token", "-q", "manager"))

	w := c.spare("w1")
	r := w.cliTimeout(cliTimeout, "swarm", "join", "--token", workerToken, "--listen-addr", w.addr,
		strings.Join([]string{m1.addr, m2.addr, m3.addr}, ","))
	if r.err != nil {
		t.Fatalf("worker join with the first listed manager (%s) down: %v", m1.addr, r.err)
	}
	t.Logf("worker join, first address dead: %s", r.elapsed)

	m4 := c.spare("m4")
	r = m4.cliTimeout(cliTimeout, "swarm", "join", "--token", managerToken, "--listen-addr", m4.addr, m1.addr, m3.addr)
	if r.err != nil {
		t.Fatalf("manager join with the first listed manager (%s) down: %v", m1.addr, r.err)
	}
	t.Logf("manager join, first address dead: %s", r.elapsed)

	for _, n := range []*node{w, m4} {
		si, err := n.swarmInfo()
		if err != nil {
			t.Fatal(err)
		}
		n.id = si.NodeID
	}
	eventually(t, convergeTimeout, rowsMatch(m3, func(m map[string]nodeRow) error {
		switch {
		case m["w1"].ID != w.id || m["w1"].Status != "Ready" || m["w1"].ManagerStatus != "":
			return fmt.Errorf("w1 not a Ready worker")
		case m["m4"].ID != m4.id || m["m4"].Status != "Ready" || (m["m4"].ManagerStatus != "Reachable" && m["m4"].ManagerStatus != "Leader"):
			return fmt.Errorf("m4 not a Ready, reachable manager")
		case m["m1"].Status != "Down" || m["m1"].ManagerStatus != "Unreachable":
			return fmt.Errorf("dead m1 not shown Down/Unreachable")
		}
		return nil
	}))
	eventually(t, convergeTimeout, func() error {
		out, _, err := m4.CLI("info")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Is Manager: true") {
			return fmt.Errorf("info on m4 does not say Is Manager: true:\n%s", out)
		}
		return nil
	})
}

// TestPromoteDemote promotes a worker, demotes the leader (leadership
// moves), demotes down to one manager and checks that the last manager
// cannot be demoted.
func TestPromoteDemote(t *testing.T) {
	c := newCluster(t, 2, 1)
	m1, m2, w1 := c.managers[0], c.managers[1], c.workers[0]

	out := m2.mustCLI(t, "node", "promote", "w1")
	if !strings.Contains(out, "promoted") {
		t.Errorf("node promote printed %q", out)
	}
	eventually(t, convergeTimeout, rowsMatch(m1, func(m map[string]nodeRow) error {
		if ms := m["w1"].ManagerStatus; ms != "Reachable" && ms != "Leader" {
			return fmt.Errorf("promoted w1 has manager status %q", ms)
		}
		return nil
	}))
	eventually(t, convergeTimeout, infoSays(w1, "Is Manager: true"))
	eventually(t, convergeTimeout, func() error { // it serves manager requests
		rows, err := w1.rows()
		if err == nil && len(rows) != 3 {
			err = fmt.Errorf("node ls on the promoted w1 lists %v", rows)
		}
		return err
	})
	managers := []*node{m1, m2, w1}

	// Demote the leader, through the leader itself.
	leader := c.mustLeader(m1)
	out = leader.mustCLI(t, "node", "demote", leader.name)
	if !strings.Contains(out, "demoted") {
		t.Errorf("node demote printed %q", out)
	}
	rest := slices.DeleteFunc(slices.Clone(managers), func(n *node) bool { return n == leader })
	eventually(t, convergeTimeout, rowsMatch(rest[0], func(m map[string]nodeRow) error {
		if ms := m[leader.name].ManagerStatus; ms != "" {
			return fmt.Errorf("demoted %s still has manager status %q", leader, ms)
		}
		if (m[rest[0].name].ManagerStatus == "Leader") == (m[rest[1].name].ManagerStatus == "Leader") {
			return fmt.Errorf("want exactly one of %s, %s as Leader", rest[0], rest[1])
		}
		for _, n := range rest {
			if ms := m[n.name].ManagerStatus; ms != "Leader" && ms != "Reachable" {
				return fmt.Errorf("%s has manager status %q", n, ms)
			}
		}
		return nil
	}))
	eventually(t, convergeTimeout, infoSays(leader, "Is Manager: false"))

	// Down to one manager.
	last, other := rest[0], rest[1]
	last.mustCLI(t, "node", "demote", other.name)
	eventually(t, convergeTimeout, rowsMatch(last, func(m map[string]nodeRow) error {
		if ms := m[other.name].ManagerStatus; ms != "" {
			return fmt.Errorf("demoted %s still has manager status %q", other, ms)
		}
		if ms := m[last.name].ManagerStatus; ms != "Leader" {
			return fmt.Errorf("the only manager %s has manager status %q", last, ms)
		}
		return nil
	}))

	// The last manager cannot be demoted, and nothing changes.
	_, stderr, err := last.CLI("node", "demote", last.name)
	if err == nil {
		t.Fatalf("demoting the last manager %s succeeded", last)
	}
	if !containsAny(stderr, "last manager") {
		t.Errorf("demoting the last manager: unclear error %q", stderr)
	}
	rows, err := last.rows("--filter", "role=manager")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Hostname != last.name || rows[0].ManagerStatus != "Leader" {
		t.Errorf("after the refused demote, managers are %v, want %s as the only one, Leader", rows, last)
	}
	if _, _, err := last.CLI("node", "update", "--label-add", "still=writable", last.name); err != nil {
		t.Errorf("write after the refused demote: %v", err)
	}
}

// infoSays checks that `info` on n contains want.
func infoSays(n *node, want string) func() error {
	return func() error {
		out, _, err := n.CLI("info")
		if err != nil {
			return err
		}
		if !strings.Contains(out, want) {
			return fmt.Errorf("info on %s does not say %q:\n%s", n, want, out)
		}
		return nil
	}
}

// TestDrain sets a node's availability and checks that a bad value is
// refused with a clear error and changes nothing, from the CLI and from
// the API.
func TestDrain(t *testing.T) {
	c := newCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]

	availability := func(want map[string]string) func() error {
		return rowsMatch(m1, func(m map[string]nodeRow) error {
			for host, a := range want {
				if m[host].Availability != a {
					return fmt.Errorf("%s is %s, want %s", host, m[host].Availability, a)
				}
			}
			return nil
		})
	}
	if out := m1.mustCLI(t, "node", "update", "--availability", "drain", "w1"); strings.TrimSpace(out) != "w1" {
		t.Errorf("node update printed %q, want the node reference", out)
	}
	eventually(t, convergeTimeout, availability(map[string]string{"w1": "Drain", "m1": "Active"}))

	_, stderr, err := m1.CLI("node", "update", "--availability", "sideways", "--label-add", "bad=1", "w1")
	if err == nil {
		t.Fatal("node update --availability sideways succeeded")
	}
	if !strings.Contains(stderr, "sideways") || !containsAny(stderr, "active") || !containsAny(stderr, "drain") {
		t.Errorf("bad availability: the error should name the value and the valid ones, got %q", stderr)
	}
	spec := nodeSpec(t, m1, "w1")
	if spec.Availability != "drain" || spec.Labels["bad"] != "" {
		t.Errorf("the refused update changed w1: %+v", spec)
	}

	// Straight to the API: POST /nodes/{id}/update with a bad value.
	code, body, err := m1.apiRequest(http.MethodGet, "/v1.47/nodes/"+w1.id, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /nodes/%s: %d %s %v", w1.id, code, body, err)
	}
	var raw struct {
		Version struct{ Index uint64 }
		Spec    map[string]any
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	raw.Spec["Availability"] = "sideways"
	code, body, err = m1.apiRequest(http.MethodPost, fmt.Sprintf("/v1.47/nodes/%s/update?version=%d", w1.id, raw.Version.Index), raw.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct{ Message string }
	_ = json.Unmarshal(body, &msg)
	if code != http.StatusBadRequest || !strings.Contains(msg.Message, "sideways") {
		t.Errorf("API update with Availability \"sideways\": %d %s; want 400 with a message naming the value", code, body)
	}
	if spec := nodeSpec(t, m1, "w1"); spec.Availability != "drain" {
		t.Errorf("the refused API update changed w1: %+v", spec)
	}

	m1.mustCLI(t, "node", "update", "--availability", "pause", "w1")
	eventually(t, convergeTimeout, availability(map[string]string{"w1": "Pause"}))
	m1.mustCLI(t, "node", "update", "--availability", "drain", "m1")
	m1.mustCLI(t, "node", "update", "--availability", "active", "w1")
	eventually(t, convergeTimeout, availability(map[string]string{"w1": "Active", "m1": "Drain"}))
}

type spec struct {
	Availability string
	Role         string
	Labels       map[string]string
}

func nodeSpec(t *testing.T, via *node, ref string) spec {
	t.Helper()
	out := via.mustCLI(t, "node", "inspect", "--format", "{{json .Spec}}", ref)
	var s spec
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("node inspect --format '{{json .Spec}}' %s: %v: %q", ref, err, out)
	}
	return s
}

// TestLeaveAndRemove covers swarm leave and node rm: what is refused and
// why, a worker that leaves goes Down and can be removed, and a node
// removed by force cannot come back, not even after a restart.
func TestLeaveAndRemove(t *testing.T) {
	c := newCluster(t, 3, 2)
	m1, m2 := c.managers[0], c.managers[1]
	w1, w2 := c.workers[0], c.workers[1]
	allThere := func() error {
		rows, err := m1.rows()
		if err == nil && len(rows) != 5 {
			err = fmt.Errorf("node ls lists %d nodes, want 5: %v", len(rows), rows)
		}
		return err
	}

	// node rm of a Ready worker without --force.
	_, stderr, err := m1.CLI("node", "rm", "w2")
	if err == nil {
		t.Fatal("node rm of a Ready worker without --force succeeded")
	}
	if !containsAny(stderr, "--force", "not down") {
		t.Errorf("node rm of a Ready worker: unclear error %q", stderr)
	}
	// node rm of a manager, with or without --force.
	for _, args := range [][]string{{"node", "rm", "m2"}, {"node", "rm", "--force", "m2"}} {
		_, stderr, err := m1.CLI(args...)
		if err == nil {
			t.Fatalf("%s of a manager succeeded", strings.Join(args, " "))
		}
		if !containsAny(stderr, "demote") {
			t.Errorf("%s of a manager: the error should say to demote it first, got %q", strings.Join(args, " "), stderr)
		}
	}
	// swarm leave on a manager without --force.
	_, stderr, err = m2.CLI("swarm", "leave")
	if err == nil {
		t.Fatal("swarm leave on a manager without --force succeeded")
	}
	if !strings.Contains(stderr, "--force") {
		t.Errorf("swarm leave on a manager: the error should mention --force, got %q", stderr)
	}
	if err := allThere(); err != nil {
		t.Fatalf("after the refused commands: %v", err)
	}
	if si, err := m2.swarmInfo(); err != nil || si.LocalNodeState != "active" || !si.ControlAvailable {
		t.Errorf("m2 after the refused leave: %+v %v", si, err)
	}

	// A worker leaves, goes Down, and is removed.
	if out := w1.mustCLI(t, "swarm", "leave"); !strings.Contains(out, "left the swarm") {
		t.Errorf("swarm leave printed %q", out)
	}
	if si, err := w1.swarmInfo(); err != nil || si.LocalNodeState != "inactive" {
		t.Errorf("w1 after swarm leave: %+v %v", si, err)
	}
	for _, m := range c.managers {
		eventually(t, downTimeout, rowsMatch(m, func(m map[string]nodeRow) error {
			if m["w1"].Status != "Down" {
				return fmt.Errorf("w1 is %q after leaving, want Down", m["w1"].Status)
			}
			return nil
		}))
	}
	m1.mustCLI(t, "node", "rm", w1.id)
	eventually(t, convergeTimeout, rowsMatch(m1, func(m map[string]nodeRow) error {
		if _, ok := m["w1"]; ok || len(m) != 4 {
			return fmt.Errorf("w1 still listed after node rm")
		}
		return nil
	}))

	// A Ready worker removed with --force cannot come back.
	m1.mustCLI(t, "node", "rm", "--force", "w2")
	notListed := rowsMatch(m1, func(m map[string]nodeRow) error {
		if r, ok := m["w2"]; ok {
			return fmt.Errorf("removed w2 listed: %v", r)
		}
		for _, r := range m {
			if r.ID == w2.id {
				return fmt.Errorf("removed w2's ID listed: %v", r)
			}
		}
		return nil
	})
	eventually(t, convergeTimeout, notListed)
	reportsError := func() error {
		si, err := w2.swarmInfo()
		if err != nil {
			return err
		}
		if si.Error == "" {
			return fmt.Errorf("info on the removed w2 reports no error: %+v", si)
		}
		return nil
	}
	eventually(t, downTimeout, reportsError)
	consistently(t, neverBackWindow, notListed)

	// Restarted on its data dir, it tries again with its old certificate.
	w2.Stop()
	w2.Start()
	eventually(t, downTimeout, reportsError)
	consistently(t, neverBackWindow, notListed)
	si, _ := w2.swarmInfo()
	t.Logf("removed node's info after restart: state %s, error %q", si.LocalNodeState, si.Error)
}
