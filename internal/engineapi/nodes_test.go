package engineapi

import (
	"net/url"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func listNodes(t *testing.T, f *fakeBackend, filters string) []string {
	t.Helper()
	target := "/v1.47/nodes"
	if filters != "" {
		target += "?filters=" + url.QueryEscape(filters)
	}
	rec := serve(t, NewHandler(f), "GET", target, "")
	wantStatus(t, rec, 200)
	var nodes []swarm.Node
	decodeJSON(t, rec, &nodes)
	names := []string{}
	for _, n := range nodes {
		names = append(names, n.Description.Hostname)
	}
	return names
}

func TestNodeListFilters(t *testing.T) {
	all := []string{"node-a", "node-b", "node-c"}
	for _, tc := range []struct {
		filters string
		want    []string
	}{
		{"", all},
		{"{}", all},
		{`{"role":{"manager":true}}`, []string{"node-a"}},
		{`{"role":["manager"]}`, []string{"node-a"}}, // legacy list form
		{`{"role":{"worker":true}}`, []string{"node-b", "node-c"}},
		{`{"role":{"WORKER":true}}`, []string{"node-b", "node-c"}},
		{`{"role":{"manager":true,"worker":true}}`, all},
		{`{"role":{"manager":false}}`, []string{"node-a"}}, // as dockerd, the boolean is not looked at
		{`{"role":{"":true}}`, all},
		{`{"id":{"b7x":true}}`, []string{"node-b", "node-c"}},
		{`{"id":{"b7x1":true}}`, []string{"node-b"}},
		{`{"id":{"b7x1":true,"a1":true}}`, []string{"node-a", "node-b"}},
		{`{"id":{"` + idC + `":true}}`, []string{"node-c"}},
		{`{"id":{"zz":true}}`, []string{}},
		{`{"name":{"node-":true}}`, all},
		{`{"name":{"node-b":true}}`, []string{"node-b"}},
		{`{"name":{"Node-b":true}}`, []string{}}, // case-sensitive, as swarmkit
		{`{"name":{"ode":true}}`, []string{}},    // a prefix, not a substring
		{`{"name":{"node-b":true,"node-c":true}}`, []string{"node-b", "node-c"}},
		{`{"node.label":{"zone=east":true}}`, []string{"node-a", "node-c"}},
		{`{"node.label":{"zone":true}}`, all},
		{`{"node.label":{"zone=":true}}`, all}, // "key=" means "key", as swarmkit
		{`{"node.label":{"ssd":true}}`, []string{"node-a"}},
		{`{"node.label":{"zone=east":true,"ssd=true":true}}`, []string{"node-a"}}, // all must match
		{`{"node.label":{"engine":true}}`, []string{}},                            // engine labels are not node labels
		{`{"label":{"engine":true}}`, []string{"node-a", "node-b"}},
		{`{"label":{"engine=two":true}}`, []string{"node-b"}},
		{`{"label":{"gpu":true}}`, []string{"node-b"}},
		{`{"label":{"zone":true}}`, []string{}}, // node labels are not engine labels
		{`{"membership":{"accepted":true}}`, all},
		{`{"membership":{"pending":true}}`, []string{}},
		{`{"membership":{"pending":true,"accepted":true}}`, all},
		{`{"role":{"worker":true},"node.label":{"zone=east":true}}`, []string{"node-c"}}, // keys combine with AND
		{`{"role":{"worker":true},"name":{"node-a":true}}`, []string{}},
	} {
		t.Run(tc.filters, func(t *testing.T) {
			if got := listNodes(t, newFakeCluster(), tc.filters); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNodeListBadFilters(t *testing.T) {
	for _, tc := range []struct{ filters, msg string }{
		{`{"foo":{"x":true}}`, "invalid filter 'foo'"},
		{`{"role":{"manager":true},"desired-state":{"running":true}}`, "invalid filter 'desired-state'"},
		{`{"role":{"boss":true}}`, "Invalid role filter: 'boss'"},
		{`{"membership":{"maybe":true}}`, "Invalid membership filter: 'maybe'"},
		{`not json`, `invalid filter: filters must be a JSON object such as {"role":{"manager":true}}`},
		{`["role"]`, `invalid filter: filters must be a JSON object such as {"role":{"manager":true}}`},
		{`{"role":"manager"}`, `invalid filter: filters must be a JSON object such as {"role":{"manager":true}}`},
	} {
		t.Run(tc.filters, func(t *testing.T) {
			// Filters are checked before the cluster is asked, as dockerd does.
			for _, f := range []*fakeBackend{newFakeCluster(), newInactiveBackend()} {
				rec := serve(t, NewHandler(f), "GET", "/nodes?filters="+url.QueryEscape(tc.filters), "")
				wantStatus(t, rec, 400)
				if got := errorMessage(t, rec); got != tc.msg {
					t.Errorf("message = %q, want %q", got, tc.msg)
				}
			}
		})
	}
}

func TestNodeListOutsideSwarm(t *testing.T) {
	rec := serve(t, NewHandler(newInactiveBackend()), "GET", "/nodes", "")
	wantStatus(t, rec, 503)
	if got := errorMessage(t, rec); got != "This node is not part of a swarm" {
		t.Errorf("message = %q", got)
	}
}

// clusterWithNameClash adds a node whose hostname is a prefix of another
// node's ID, and two nodes sharing a hostname.
func clusterWithNameClash() *fakeBackend {
	f := newFakeCluster()
	f.nodes = append(f.nodes,
		newNode("c0ffee0000000000000000001", "a1b2", swarm.NodeRoleWorker, 20), // hostname = prefix of idA
		newNode("d00d000000000000000000001", "twin", swarm.NodeRoleWorker, 21),
		newNode("d00d000000000000000000002", "twin", swarm.NodeRoleWorker, 22),
	)
	return f
}

func TestNodeResolution(t *testing.T) {
	for _, tc := range []refCase{
		{ref: idA, wantID: idA},
		{ref: "node-b", wantID: idB},
		{ref: "b7x9", wantID: idC},
		{ref: "a", wantID: idA},
		{ref: "c0ffee", wantID: "c0ffee0000000000000000001"},
		// An exact hostname wins over an ID prefix, as in dockerd.
		{ref: "a1b2", wantID: "c0ffee0000000000000000001"},
		{ref: "a1b2c", wantID: idA},
		{ref: "b7x", code: 400, msg: "node b7x is ambiguous (2 matches found)"},
		{ref: "twin", code: 400, msg: "node twin is ambiguous (2 matches found)"},
		{ref: "d00d000000000000000000002", wantID: "d00d000000000000000000002"},
		{ref: "nosuch", code: 404, msg: "node nosuch not found"},
		{ref: "Node-b", code: 404, msg: "node Node-b not found"}, // hostnames are case-sensitive
		{ref: "node-", code: 404, msg: "node node- not found"},   // no hostname prefixes
	} {
		t.Run(tc.ref, func(t *testing.T) {
			rec := serve(t, NewHandler(clusterWithNameClash()), "GET", "/v1.47/nodes/"+tc.ref, "")
			wantResolved(t, rec, tc.code, tc.msg, tc.wantID)
		})
	}
}

func TestNodeUpdate(t *testing.T) {
	spec := `{"Role":"manager","Availability":"drain","Labels":{"x":"y"},"Name":"nb"}`
	for _, tc := range []struct {
		name, ref, query, body string
		code                   int
		msg                    string
		wantID                 string
	}{
		{name: "by name", ref: "node-b", query: "?version=11", body: spec, code: 200, wantID: idB},
		{name: "by ID", ref: idB, query: "?version=11", body: spec, code: 200, wantID: idB},
		{name: "by prefix", ref: "b7x1", query: "?version=11", body: spec, code: 200, wantID: idB},
		{name: "stale", ref: "node-b", query: "?version=10", body: spec, code: 409, msg: "update out of sequence", wantID: idB},
		{name: "missing version", ref: "node-b", body: spec, code: 400, msg: "invalid node version '': the version query parameter is required"},
		{name: "bad version", ref: "node-b", query: "?version=1.5", body: spec, code: 400, msg: `invalid node version '1.5': strconv.ParseUint: parsing "1.5": invalid syntax`},
		{name: "unknown node", ref: "nosuch", query: "?version=1", body: spec, code: 404, msg: "node nosuch not found"},
		{name: "ambiguous", ref: "b7x", query: "?version=1", body: spec, code: 400, msg: "node b7x is ambiguous (2 matches found)"},
		{name: "empty body", ref: "node-b", query: "?version=11", body: "", code: 400, msg: "invalid JSON: the request body is empty, a JSON object is required"},
		{name: "wrong type", ref: "node-b", query: "?version=11", body: `{"Labels":["x"]}`, code: 400, msg: "invalid JSON: field Annotations.Labels: cannot use a JSON array as map[string]string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster()
			rec := serve(t, NewHandler(f), "POST", "/v1.47/nodes/"+tc.ref+"/update"+tc.query, tc.body)
			wantStatus(t, rec, tc.code)
			calls := f.recorded().nodeUpdates
			if tc.code != 200 {
				if got := errorMessage(t, rec); got != tc.msg {
					t.Errorf("message = %q, want %q", got, tc.msg)
				}
			} else if rec.Body.Len() != 0 {
				t.Errorf("body = %q, want empty", rec.Body.String())
			}
			if tc.wantID == "" {
				if len(calls) != 0 {
					t.Errorf("backend called: %+v", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("NodeUpdate called %d times", len(calls))
			}
			c := calls[0]
			if c.ID != tc.wantID || c.Spec.Role != swarm.NodeRoleManager || c.Spec.Availability != swarm.NodeAvailabilityDrain ||
				c.Spec.Labels["x"] != "y" || c.Spec.Name != "nb" {
				t.Errorf("unexpected call %+v", c)
			}
		})
	}
}

func TestNodeRemove(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		code         int
		msg          string
		want         *nodeRemoveCall
	}{
		{name: "by name forced", target: "/nodes/node-b?force=1", code: 200, want: &nodeRemoveCall{idB, true}},
		{name: "by prefix forced", target: "/v1.47/nodes/b7x9?force=true", code: 200, want: &nodeRemoveCall{idC, true}},
		{name: "not forced", target: "/nodes/node-b", code: 400, msg: "node " + idB + " is not down and can't be removed", want: &nodeRemoveCall{idB, false}},
		{name: "force=0", target: "/nodes/node-b?force=0", code: 400, msg: "node " + idB + " is not down and can't be removed", want: &nodeRemoveCall{idB, false}},
		{name: "unknown", target: "/nodes/nosuch?force=1", code: 404, msg: "node nosuch not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster()
			rec := serve(t, NewHandler(f), "DELETE", tc.target, "")
			wantStatus(t, rec, tc.code)
			if tc.code != 200 {
				if got := errorMessage(t, rec); got != tc.msg {
					t.Errorf("message = %q, want %q", got, tc.msg)
				}
			}
			calls := f.recorded().nodeRemoves
			if tc.want == nil {
				if len(calls) != 0 {
					t.Errorf("backend called: %+v", calls)
				}
				return
			}
			if len(calls) != 1 || calls[0] != *tc.want {
				t.Errorf("calls = %+v, want %+v", calls, *tc.want)
			}
		})
	}
}
