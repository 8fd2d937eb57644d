package e2e

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The durability test's model: a map of service name → (exists, value of
// the label the clients write, version). Each key is checked on its own
// (porcupine partitions the history by key), which keeps the search small.

type opKind string

const (
	opCreate opKind = "create"
	opUpdate opKind = "update"
	opRemove opKind = "remove"
	opRead   opKind = "read"
)

// outcome is what a client learnt of a write.
type outcome string

const (
	outOK       outcome = "ok"
	outExists   outcome = "exists"   // create refused: the name is taken
	outStale    outcome = "stale"    // update refused: version out of sequence
	outNotFound outcome = "notfound" // update or remove of a missing service
	// outUnknown: a timeout, a reset connection, or the manager said it may
	// or may not have applied the write. The operation may have happened,
	// at any time after its call: it returns at +infinity.
	outUnknown outcome = "unknown"
)

type svcInput struct {
	kind    opKind
	key     string
	value   string // create, update: the label value written (unique)
	version uint64 // update: the version the client read
	via     string // the manager asked
}

// svcOutput is what an operation returned. A read that got an answer
// always has a definite outcome (reads that failed are not recorded: they
// say nothing).
type svcOutput struct {
	outcome outcome
	exists  bool   // read
	value   string // read
	version uint64 // read
}

// svcState is one key's state; version 0 means not observed yet: the
// version of a write is the Raft index it got, which no client learns
// until it reads it.
type svcState struct {
	exists  bool
	value   string
	version uint64
}

func svcStep(st, in, out any) (bool, any) {
	s, i, o := st.(svcState), in.(svcInput), out.(svcOutput)
	switch i.kind {
	case opRead:
		if o.exists != s.exists || o.value != s.value {
			return false, s
		}
		if !s.exists {
			return true, s
		}
		if s.version != 0 && s.version != o.version {
			return false, s // the version moved without a write
		}
		s.version = o.version
		return true, s
	case opCreate:
		switch o.outcome {
		case outOK:
			return !s.exists, svcState{exists: true, value: i.value}
		case outExists:
			return s.exists, s
		case outUnknown:
			if s.exists {
				return true, s // it would have failed
			}
			return true, svcState{exists: true, value: i.value}
		}
	case opUpdate:
		matches := s.exists && (s.version == 0 || s.version == i.version)
		switch o.outcome {
		case outOK:
			return matches, svcState{exists: true, value: i.value}
		case outStale:
			return s.exists && s.version != i.version, s
		case outNotFound:
			return !s.exists, s
		case outUnknown:
			if !matches {
				return true, s
			}
			return true, svcState{exists: true, value: i.value}
		}
	case opRemove:
		switch o.outcome {
		case outOK:
			return s.exists, svcState{}
		case outNotFound:
			return !s.exists, s
		case outUnknown:
			return true, svcState{}
		}
	}
	return false, s
}

var serviceModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(svcInput).key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return svcState{} },
	Step: svcStep,
	DescribeOperation: func(in, out any) string {
		i, o := in.(svcInput), out.(svcOutput)
		switch i.kind {
		case opRead:
			if !o.exists {
				return fmt.Sprintf("read(%s) via %s → absent", i.key, i.via)
			}
			return fmt.Sprintf("read(%s) via %s → %s@%d", i.key, i.via, o.value, o.version)
		case opUpdate:
			return fmt.Sprintf("update(%s, %s, version=%d) via %s → %s", i.key, i.value, i.version, i.via, o.outcome)
		case opCreate:
			return fmt.Sprintf("create(%s, %s) via %s → %s", i.key, i.value, i.via, o.outcome)
		default:
			return fmt.Sprintf("%s(%s) via %s → %s", i.kind, i.key, i.via, o.outcome)
		}
	},
	DescribeState: func(st any) string {
		s := st.(svcState)
		if !s.exists {
			return "absent"
		}
		if s.version == 0 {
			return s.value + "@?"
		}
		return fmt.Sprintf("%s@%d", s.value, s.version)
	},
}

// history records operations from many goroutines.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	// Counts: writes by outcome; writes refused for want of a leader and
	// writes to a dead daemon (neither in the history); reads answered and
	// not.
	ok, failed, unknown, noLeader, dialFailed, reads, readErrs, staleReads int
}

func newHistory() *history { return &history{start: time.Now()} }

func (h *history) now() int64 { return int64(time.Since(h.start)) }

// add records one operation; an unknown outcome returns at +infinity.
func (h *history) add(client int, in svcInput, call int64, out svcOutput) {
	ret := h.now()
	if out.outcome == outUnknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	switch {
	case in.kind == opRead:
		h.reads++
	case out.outcome == outOK:
		h.ok++
	case out.outcome == outUnknown:
		h.unknown++
	default:
		h.failed++
	}
}

// refused counts a write that was never proposed: refused for want of a
// leader, or never sent (the daemon was dead).
func (h *history) refused(noLeader bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if noLeader {
		h.noLeader++
	} else {
		h.dialFailed++
	}
}

// staleRead counts a read answered without a confirmed leader.
func (h *history) staleRead() {
	h.mu.Lock()
	h.staleReads++
	h.mu.Unlock()
}

// readFailed counts a read that got no answer (not part of the history).
func (h *history) readFailed() {
	h.mu.Lock()
	h.readErrs++
	h.mu.Unlock()
}

func (h *history) snapshot() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

// explainIllegal describes, for each key whose history is not
// linearizable, the longest linearization found (its last steps, with the
// state after each) and the operations it could not place next, in call
// order: where to start reading the visualization.
func explainIllegal(info porcupine.LinearizationInfo, ops []porcupine.Operation, start time.Time) string {
	var b strings.Builder
	at := func(ns int64) string {
		if ns == math.MaxInt64 {
			return "∞"
		}
		return start.Add(time.Duration(ns)).UTC().Format("15:04:05.000")
	}
	for _, partials := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, p := range partials {
			if len(p) > len(longest) {
				longest = p
			}
		}
		if len(partials) == 0 || len(longest) == 0 {
			continue
		}
		key := longest[0].Input.(svcInput).key
		placed := len(longest)
		fmt.Fprintf(&b, "key %s: longest linearization has %d operations; its end:\n", key, placed)
		st := serviceModel.Init()
		var states []any
		for _, op := range longest {
			_, st = serviceModel.Step(st, op.Input, op.Output)
			states = append(states, st)
		}
		for i := max(0, placed-15); i < placed; i++ {
			op := longest[i]
			fmt.Fprintf(&b, "  [%s, %s] client %d %s  => %s\n", at(op.Call), at(op.Return), op.ClientId,
				serviceModel.DescribeOperation(op.Input, op.Output), serviceModel.DescribeState(states[i]))
		}
		done := map[porcupine.Operation]bool{}
		for _, op := range longest {
			done[op] = true
		}
		var rest []porcupine.Operation
		for _, op := range ops {
			if op.Input.(svcInput).key == key && !done[op] {
				rest = append(rest, op)
			}
		}
		sort.Slice(rest, func(i, j int) bool { return rest[i].Call < rest[j].Call })
		fmt.Fprintf(&b, "  not placed (%d), first in call order:\n", len(rest))
		for _, op := range rest[:min(len(rest), 12)] {
			fmt.Fprintf(&b, "  [%s, %s] client %d %s\n", at(op.Call), at(op.Return), op.ClientId,
				serviceModel.DescribeOperation(op.Input, op.Output))
		}
	}
	return b.String()
}
