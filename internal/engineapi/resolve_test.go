package engineapi

import (
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func svc(id, name string) swarm.Service {
	return swarm.Service{ID: id, Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name}}}
}

func TestResolve(t *testing.T) {
	services := []swarm.Service{
		svc("aaa111", "web"),
		svc("aaa222", "aaa111x"), // a name that starts like an ID
		svc("bbb333", "aaa222"),  // a name equal to another service's ID
		svc("ccc444", "twin"),
		svc("ccc555", "twin"),
		svc("ddd666", "ccc"), // a name that is also an ID prefix of others
		svc("ddd6667", "db"), // an ID that extends another's
		svc("eee777", "Mixed"),
	}
	for _, tc := range []struct {
		name, ref string
		wantID    string
		kind      errdefs.Kind
		msg       string
	}{
		{name: "full ID", ref: "aaa111", wantID: "aaa111"},
		{name: "full ID beats a name equal to it", ref: "aaa222", wantID: "aaa222"},
		{name: "full ID beats a longer ID it prefixes", ref: "ddd666", wantID: "ddd666"},
		{name: "name", ref: "web", wantID: "aaa111"},
		{name: "name beats ID prefix", ref: "ccc", wantID: "ddd666"},
		{name: "unique ID prefix", ref: "bbb", wantID: "bbb333"},
		{name: "ambiguous ID prefix", ref: "aaa", kind: errdefs.KindInvalid, msg: "service aaa is ambiguous (2 matches found)"},
		{name: "ambiguous name", ref: "twin", kind: errdefs.KindInvalid, msg: "service twin is ambiguous (2 matches found)"},
		{name: "names are case-sensitive", ref: "mixed", kind: errdefs.KindNotFound, msg: "service mixed not found"},
		{name: "no name prefixes", ref: "we", kind: errdefs.KindNotFound, msg: "service we not found"},
		{name: "not found", ref: "zzz", kind: errdefs.KindNotFound, msg: "service zzz not found"},
		// An empty reference is an empty ID prefix, as in swarmkit.
		{name: "empty reference", ref: "", kind: errdefs.KindInvalid, msg: "service  is ambiguous (8 matches found)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve(serviceRefs, services, tc.ref)
			if tc.msg == "" {
				if err != nil || got.ID != tc.wantID {
					t.Fatalf("resolve(%q) = %s, %v; want %s", tc.ref, got.ID, err, tc.wantID)
				}
				return
			}
			if err == nil || err.Error() != tc.msg || errdefs.KindOf(err) != tc.kind {
				t.Fatalf("resolve(%q) = %s, %v (kind %v); want %q (kind %v)", tc.ref, got.ID, err, errdefs.KindOf(err), tc.msg, tc.kind)
			}
		})
	}
}

func TestResolveEmpty(t *testing.T) {
	// With one object, an empty reference names it, as in swarmkit.
	one := []swarm.Service{svc("aaa111", "web")}
	if got, err := resolve(serviceRefs, one, ""); err != nil || got.ID != "aaa111" {
		t.Errorf(`resolve("") among one = %s, %v`, got.ID, err)
	}
	// With none, it names nothing.
	if _, err := resolve(serviceRefs, nil, ""); !errdefs.Is(err, errdefs.KindNotFound) || err.Error() != "service  not found" {
		t.Errorf(`resolve("") among none: %v`, err)
	}
}

// Nodes are named by hostname.
func TestResolveNodeByHostname(t *testing.T) {
	nodes := []swarm.Node{newNode(idA, "node-a", swarm.NodeRoleManager, 1), newNode(idB, "node-b", swarm.NodeRoleWorker, 2)}
	if got, err := resolve(nodeRefs, nodes, "node-b"); err != nil || got.ID != idB {
		t.Errorf("resolve(node-b) = %s, %v", got.ID, err)
	}
	if _, err := resolve(nodeRefs, nodes, "node-c"); err == nil || err.Error() != "node node-c not found" {
		t.Errorf("resolve(node-c): %v", err)
	}
}
