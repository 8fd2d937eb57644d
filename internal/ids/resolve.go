package ids

import (
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Kind says how references to one kind of object are resolved.
type Kind[T any] struct {
	Noun string // starts the error messages, as dockerd's: "node", "service", "task"
	ID   func(*T) string
	Name func(*T) string // the name a reference may give in full
}

// Resolve finds the object ref names among objs as dockerd (with swarmkit)
// does: the full ID, else the exact name (case-sensitive), else an ID
// prefix. Within the first of these that matches anything, several
// matches are ambiguous; dockerd answers 400 for that and 404 for none,
// with these messages, which scripts match on.
//
// An empty reference is an empty ID prefix, as in swarmkit: it names the
// only object if there is one.
func Resolve[T any](k Kind[T], objs []T, ref string) (T, error) {
	var zero T
	for i := range objs {
		if k.ID(&objs[i]) == ref {
			return objs[i], nil
		}
	}
	for _, match := range []func(*T) bool{
		func(o *T) bool { return k.Name(o) == ref },
		func(o *T) bool { return strings.HasPrefix(k.ID(o), ref) },
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
			return zero, errdefs.Invalid("%s %s is ambiguous (%d matches found)", k.Noun, ref, n)
		}
	}
	return zero, errdefs.NotFound("%s %s not found", k.Noun, ref)
}

// NetworkRefs resolves references to networks.
var NetworkRefs = Kind[swarm.Network]{
	Noun: "network",
	ID:   func(n *swarm.Network) string { return n.ID },
	Name: func(n *swarm.Network) string { return n.Spec.Name },
}

// SecretRefs resolves references to secrets.
var SecretRefs = Kind[swarm.Secret]{
	Noun: "secret",
	ID:   func(s *swarm.Secret) string { return s.ID },
	Name: func(s *swarm.Secret) string { return s.Spec.Name },
}

// ConfigRefs resolves references to configs.
var ConfigRefs = Kind[swarm.Config]{
	Noun: "config",
	ID:   func(c *swarm.Config) string { return c.ID },
	Name: func(c *swarm.Config) string { return c.Spec.Name },
}
