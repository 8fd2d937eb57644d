package state

import (
	"maps"
	"strconv"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"
)

// change is what one applied op did: the object before (nil on create)
// and after (nil on delete).
type change struct {
	table    string
	action   Action
	old, new Object
}

// ScopeSwarm is the scope of every event the store records: Docker's
// cluster events are "swarm", its engine's own "local".
const ScopeSwarm = "swarm"

// eventOf turns a change into Docker's swarm event, as dockerd derives
// them from swarmkit's store (daemon/events.go): node, service, network,
// secret and config objects; create, update, remove; for updates of
// nodes and services, attributes naming what changed. ok is false for
// changes that are no event: other tables (cluster, tasks), and node
// writes that only refresh a heartbeat.
func eventOf(c change) (ev events.Message, ok bool) {
	obj := c.new
	if obj == nil {
		obj = c.old
	}
	var action events.Action
	switch c.action {
	case ActionCreate:
		action = events.ActionCreate
	case ActionDelete:
		action = events.ActionRemove
	default:
		action = events.ActionUpdate
	}
	if n, ok := obj.(*Node); ok && c.action == ActionPatch {
		if old, _ := c.old.(*Node); old != nil && !nodeChanged(old, n) {
			return ev, false // a heartbeat: nothing a user sees changed
		}
	}
	attrs := map[string]string{}
	var typ events.Type
	switch o := obj.(type) {
	case *Node:
		typ = events.NodeEventType
		attrs["name"] = nodeName(o)
		if old, _ := c.old.(*Node); action == events.ActionUpdate && old != nil {
			nodeChanges(old, o, attrs)
		}
	case *Service:
		typ = events.ServiceEventType
		attrs["name"] = o.Spec.Name
		if old, _ := c.old.(*Service); action == events.ActionUpdate && old != nil {
			serviceChanges(old, o, attrs)
		}
	case *Network:
		typ, attrs["name"] = events.NetworkEventType, o.Spec.Name
	case *Secret:
		typ, attrs["name"] = events.SecretEventType, o.Spec.Name
	case *Config:
		typ, attrs["name"] = events.ConfigEventType, o.Spec.Name
	default:
		return ev, false
	}
	return events.Message{Type: typ, Action: action, Scope: ScopeSwarm,
		Actor: events.Actor{ID: obj.GetID(), Attributes: attrs}}, true
}

func nodeName(n *Node) string {
	if n.Spec.Name != "" {
		return n.Spec.Name
	}
	return n.Description.Hostname
}

// nodeChanged reports whether anything a user sees differs between two
// versions of a node: its spec, role, state, manager status or address.
// Heartbeats rewrite nodes every period; this keeps them out of the events
// without allocating.
func nodeChanged(old, n *Node) bool {
	if old.Spec.Name != n.Spec.Name || old.Spec.Role != n.Spec.Role || old.Spec.Availability != n.Spec.Availability ||
		!maps.Equal(old.Spec.Labels, n.Spec.Labels) || old.Role != n.Role || old.Status.State != n.Status.State || old.Addr != n.Addr {
		return true
	}
	if (old.ManagerStatus == nil) != (n.ManagerStatus == nil) {
		return true
	}
	return old.ManagerStatus != nil && old.ManagerStatus.Reachability != n.ManagerStatus.Reachability
}

// nodeChanges adds dockerd's old/new attributes for what changed in a
// node.
func nodeChanges(old, n *Node, attrs map[string]string) {
	pair := func(key, was, is string) {
		if was != is {
			attrs[key+".old"], attrs[key+".new"] = was, is
		}
	}
	pair("availability", string(old.Spec.Availability), string(n.Spec.Availability))
	pair("role", string(old.Role), string(n.Role))
	pair("state", string(old.Status.State), string(n.Status.State))
	if old.ManagerStatus != nil && n.ManagerStatus != nil {
		pair("reachability", string(old.ManagerStatus.Reachability), string(n.ManagerStatus.Reachability))
	}
}

// serviceChanges adds dockerd's attributes for a service update: the
// image, the replica count and the update state, when they changed.
func serviceChanges(old, s *Service, attrs map[string]string) {
	if img, was := imageOf(s.Spec), imageOf(old.Spec); img != was {
		attrs["image.old"], attrs["image.new"] = was, img
	}
	if r, was := replicasOf(s.Spec), replicasOf(old.Spec); r != nil && was != nil && *r != *was {
		attrs["replicas.old"], attrs["replicas.new"] = strconv.FormatUint(*was, 10), strconv.FormatUint(*r, 10)
	}
	if s.UpdateStatus != nil {
		switch {
		case old.UpdateStatus == nil:
			attrs["updatestate.new"] = string(s.UpdateStatus.State)
		case old.UpdateStatus.State != s.UpdateStatus.State:
			attrs["updatestate.old"], attrs["updatestate.new"] = string(old.UpdateStatus.State), string(s.UpdateStatus.State)
		}
	}
}

func imageOf(spec swarm.ServiceSpec) string {
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		return cs.Image
	}
	return ""
}

func replicasOf(spec swarm.ServiceSpec) *uint64 {
	if r := spec.Mode.Replicated; r != nil && r.Replicas != nil {
		return r.Replicas
	}
	return nil
}
