package engineapi

import (
	"strings"

	"github.com/moby/moby/api/types/events"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// eventFilterKeys are the filters of `docker events`. dockerd accepts any
// key and ignores those it does not know; flotilla refuses them, so a typo
// (typ=service) is an error rather than a stream of everything.
var eventFilterKeys = []string{"config", "container", "daemon", "event", "image", "label",
	"network", "node", "plugin", "scope", "secret", "service", "type", "volume"}

// eventTypes are Docker's event types; flotilla records the swarm ones.
var eventTypes = map[string]bool{"builder": true, "config": true, "container": true, "daemon": true,
	"image": true, "network": true, "node": true, "plugin": true, "secret": true, "service": true, "volume": true}

var swarmEventTypes = map[string]bool{"config": true, "network": true, "node": true, "secret": true, "service": true}

// eventFilter is the parsed filters of GET /events.
type eventFilter struct{ args filterArgs }

func parseEventFilter(raw string) (eventFilter, error) {
	args, err := parseFilters(raw)
	if err != nil {
		return eventFilter{}, err
	}
	if err := args.validate(eventFilterKeys...); err != nil {
		return eventFilter{}, err
	}
	for _, t := range args.get("type") {
		if !eventTypes[t] {
			return eventFilter{}, errdefs.Invalid("invalid filter 'type=%s': the event types are builder, config, container, daemon, image, network, node, plugin, secret, service and volume", t)
		}
	}
	for _, s := range args.get("scope") {
		if s != "local" && s != "swarm" {
			return eventFilter{}, errdefs.Invalid("invalid filter 'scope=%s': the scopes are local and swarm", s)
		}
	}
	return eventFilter{args: args}, nil
}

// wantsSwarm reports whether any swarm event could pass the filter: not
// when it asks only for local scope or only for engine event types. Such
// a stream is served (empty) on any node, as flotilla has no engine
// events.
func (f eventFilter) wantsSwarm() bool {
	if len(f.args["scope"]) > 0 && !f.args["scope"]["swarm"] {
		return false
	}
	if len(f.args["type"]) == 0 {
		return true
	}
	for t := range f.args["type"] {
		if swarmEventTypes[t] {
			return true
		}
	}
	return false
}

// include reports whether ev passes, with dockerd's rules
// (daemon/events/filter.go): type, scope and event match exactly; a key
// naming an object kind (node, service, network...) matches the prefix of
// any event's actor ID or name; label matches the actor's attributes.
func (f eventFilter) include(ev events.Message) bool {
	exact := func(key, v string) bool { return len(f.args[key]) == 0 || f.args[key][v] }
	if !exact("type", string(ev.Type)) || !exact("scope", ev.Scope) || !exact("event", string(ev.Action)) {
		return false
	}
	for _, key := range []string{"config", "container", "daemon", "network", "node", "plugin", "secret", "service", "volume"} {
		if len(f.args[key]) == 0 {
			continue
		}
		if !f.prefixOf(key, ev.Actor.ID) && !f.prefixOf(key, ev.Actor.Attributes["name"]) {
			return false
		}
	}
	if len(f.args["image"]) > 0 && !f.args["image"][ev.Actor.ID] && !f.args["image"][ev.Actor.Attributes["image"]] {
		return false
	}
	return matchLabels(ev.Actor.Attributes, f.args.get("label"))
}

func (f eventFilter) prefixOf(key, s string) bool {
	for v := range f.args[key] {
		if strings.HasPrefix(s, v) {
			return true
		}
	}
	return false
}
