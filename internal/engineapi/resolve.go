package engineapi

import (
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/ids"
)

// refKind says how references to one kind of object are resolved.
type refKind[T any] = ids.Kind[T]

var (
	nodeRefs = refKind[swarm.Node]{
		Noun: "node",
		ID:   func(n *swarm.Node) string { return n.ID },
		Name: func(n *swarm.Node) string { return n.Description.Hostname },
	}
	serviceRefs = refKind[swarm.Service]{
		Noun: "service",
		ID:   func(s *swarm.Service) string { return s.ID },
		Name: func(s *swarm.Service) string { return s.Spec.Name },
	}
	networkRefs = ids.NetworkRefs
)

// resolve finds the object ref names among objs as dockerd does: the
// full ID, else the exact name, else a unique ID prefix (ids.Resolve).
// The routes never pass an empty reference (a path segment is never
// empty).
func resolve[T any](k refKind[T], objs []T, ref string) (T, error) {
	return ids.Resolve(k, objs, ref)
}
