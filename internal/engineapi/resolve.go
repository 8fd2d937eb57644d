package engineapi

import (
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// refKind says how references to one kind of object are resolved.
type refKind[T any] struct {
	noun string // starts the error messages, as dockerd's: "node", "service", "task"
	id   func(*T) string
	name func(*T) string // the name a reference may give in full
}

var (
	nodeRefs = refKind[swarm.Node]{
		noun: "node",
		id:   func(n *swarm.Node) string { return n.ID },
		name: func(n *swarm.Node) string { return n.Description.Hostname },
	}
	serviceRefs = refKind[swarm.Service]{
		noun: "service",
		id:   func(s *swarm.Service) string { return s.ID },
		name: func(s *swarm.Service) string { return s.Spec.Name },
	}
)

// resolve finds the object ref names among objs as dockerd (with swarmkit)
// does: the full ID, else the exact name (case-sensitive), else an ID
// prefix. Within the first of these that matches anything, several
// matches are ambiguous; dockerd answers 400 for that and 404 for none,
// with these messages, which scripts match on.
//
// An empty reference is an empty ID prefix, as in swarmkit: it names the
// only object if there is one. The routes never pass one (a path segment
// is never empty).
func resolve[T any](k refKind[T], objs []T, ref string) (T, error) {
	var zero T
	for i := range objs {
		if k.id(&objs[i]) == ref {
			return objs[i], nil
		}
	}
	for _, match := range []func(*T) bool{
		func(o *T) bool { return k.name(o) == ref },
		func(o *T) bool { return strings.HasPrefix(k.id(o), ref) },
	} {
		found, n := -1, 0
		for i := range objs {
			if match(&objs[i]) {
				found, n = i, n+1
			}
		}
		switch {
		case n == 1:
			return objs[found], nil
		case n > 1:
			return zero, errdefs.Invalid("%s %s is ambiguous (%d matches found)", k.noun, ref, n)
		}
	}
	return zero, errdefs.NotFound("%s %s not found", k.noun, ref)
}
