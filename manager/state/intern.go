package state

import (
	"encoding/json"

	"github.com/moby/moby/api/types/swarm"
)

// specs lets tasks with the same spec share one decoded copy of it. Every
// task carries its service's task template, each in its own log entry:
// 10,000 replicas held 10,000 equal container specs with their label
// maps, environments and mounts, most of a manager's store. Stored
// objects are never written to (Store.Get), so tasks may share what
// their specs point to.
//
// A task's spec is kept undecoded until its encoding is looked up: the
// same bytes decode to the same spec, so a task whose spec is already
// known is not decoded again, and one that differs in any byte gets its
// own. It is the writer's alone (Apply, Restore, under writeMu).
type specs struct {
	byJSON map[string]*sharedSpec
	key    []byte // scratch: a lookup by string(key) copies nothing
}

type sharedSpec struct {
	spec  swarm.TaskSpec
	ports []swarm.PortConfig
}

// maxSpecs bounds the specs remembered: a cluster has a spec per service
// version in use, far fewer. Past it they are forgotten all at once, and
// the tasks written after share among themselves again.
const maxSpecs = 4096

// taskWire decodes a task with its spec and ports left as they are
// encoded: the outer fields hide the task's own from the decoder.
type taskWire struct {
	*Task
	Spec  json.RawMessage
	Ports json.RawMessage
}

// decodeTask decodes an encoded task with decode (one of the JSON
// decoders), sharing the spec and ports of an earlier task that had the
// same encoding.
func (sp *specs) decodeTask(b []byte, decode func([]byte, any) error) (*Task, error) {
	t := &Task{}
	w := taskWire{Task: t}
	if err := decode(b, &w); err != nil {
		return nil, err
	}
	if isNull(w.Spec) && isNull(w.Ports) {
		return t, nil
	}
	sp.key = append(append(append(sp.key[:0], w.Spec...), 0), w.Ports...)
	if sh := sp.byJSON[string(sp.key)]; sh != nil {
		t.Spec, t.Ports = sh.spec, sh.ports
		return t, nil
	}
	sh := &sharedSpec{}
	if !isNull(w.Spec) {
		if err := decode(w.Spec, &sh.spec); err != nil {
			return nil, err
		}
	}
	if !isNull(w.Ports) {
		if err := decode(w.Ports, &sh.ports); err != nil {
			return nil, err
		}
	}
	if sp.byJSON == nil || len(sp.byJSON) >= maxSpecs {
		sp.byJSON = map[string]*sharedSpec{}
	}
	sp.byJSON[string(sp.key)] = sh
	t.Spec, t.Ports = sh.spec, sh.ports
	return t, nil
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }
