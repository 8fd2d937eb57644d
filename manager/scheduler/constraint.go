package scheduler

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// Operator is a constraint's comparison: equal or not equal.
type Operator string

// The two operators of swarm's constraint syntax.
const (
	OpEqual    Operator = "=="
	OpNotEqual Operator = "!="
)

// Constraint key prefixes for labels, as in swarm.
const (
	NodeLabelPrefix   = "node.labels."
	EngineLabelPrefix = "engine.labels."
)

type keyKind int

const (
	keyNodeID keyKind = iota
	keyHostname
	keyRole
	keyOS
	keyArch
	keyNodeLabel
	keyEngineLabel
)

// fixedKeys are the constraint keys without a label part (matched
// case-insensitively, as swarm does).
var fixedKeys = map[string]keyKind{
	"node.id":            keyNodeID,
	"node.hostname":      keyHostname,
	"node.role":          keyRole,
	"node.platform.os":   keyOS,
	"node.platform.arch": keyArch,
}

const knownKeys = "node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<label>, engine.labels.<label>"

var (
	// keyPattern and valuePattern are swarmkit's, so that what docker
	// accepts, flotilla accepts, and values cannot hold (future) operators.
	keyPattern   = regexp.MustCompile(`^(?i)[a-z_][a-z0-9\-_.]+$`)
	valuePattern = regexp.MustCompile(`^(?i)[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$`)
)

// Constraint is one parsed placement constraint, such as
// "node.labels.zone==east".
type Constraint struct {
	Key   string // as written, e.g. "node.labels.zone"
	Op    Operator
	Value string

	kind  keyKind
	label string // label name for node.labels.* / engine.labels.* (case-sensitive)
}

// String returns the constraint in swarm's syntax.
func (c Constraint) String() string { return c.Key + string(c.Op) + c.Value }

// ParseConstraints parses swarm placement constraints ("key==value",
// "key!=value"). It rejects what swarm would silently never match: a single
// "=", unknown keys, empty values or label names, and node.role values other
// than manager and worker. Errors name the offending expression.
func ParseConstraints(exprs []string) ([]Constraint, error) {
	out := make([]Constraint, 0, len(exprs))
	for _, e := range exprs {
		c, err := parseConstraint(e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseConstraint(expr string) (Constraint, error) {
	var c Constraint
	i, op := operatorIndex(expr)
	if i < 0 {
		hint := ""
		if k, v, ok := strings.Cut(expr, "="); ok {
			// "node.role~=manager" or "a:=b" mean ==: drop the stray
			// operator characters rather than suggest "~==".
			k = strings.TrimRight(strings.TrimSpace(k), "~:<>!")
			hint = fmt.Sprintf(`; did you mean "%s==%s"?`, strings.TrimSpace(k), strings.TrimSpace(v))
		}
		return c, fmt.Errorf("invalid constraint %q: expected an operator == or !=%s", expr, hint)
	}
	key := strings.TrimSpace(expr[:i])
	value := strings.TrimSpace(expr[i+len(op):])
	if key == "" {
		return c, fmt.Errorf("invalid constraint %q: missing key before %s", expr, op)
	}
	if !keyPattern.MatchString(key) {
		return c, fmt.Errorf("invalid constraint %q: key %q is invalid", expr, key)
	}
	if value == "" {
		return c, fmt.Errorf("invalid constraint %q: empty value after %s", expr, op)
	}
	if !valuePattern.MatchString(value) {
		return c, fmt.Errorf("invalid constraint %q: value %q is invalid (use letters, digits and - _ . : / only)", expr, value)
	}
	c = Constraint{Key: key, Op: op, Value: value}
	lower := strings.ToLower(key)
	if k, ok := fixedKeys[lower]; ok {
		c.kind = k
	} else if strings.HasPrefix(lower, NodeLabelPrefix) {
		c.kind, c.label = keyNodeLabel, key[len(NodeLabelPrefix):]
	} else if strings.HasPrefix(lower, EngineLabelPrefix) {
		c.kind, c.label = keyEngineLabel, key[len(EngineLabelPrefix):]
	} else if lower == strings.TrimSuffix(NodeLabelPrefix, ".") || lower == strings.TrimSuffix(EngineLabelPrefix, ".") {
		return c, fmt.Errorf("invalid constraint %q: missing label name in %q (use %s<label>)", expr, key, key+".")
	} else {
		return c, fmt.Errorf("invalid constraint %q: unknown key %q (known keys: %s)", expr, key, knownKeys)
	}
	if (c.kind == keyNodeLabel || c.kind == keyEngineLabel) && c.label == "" {
		return c, fmt.Errorf("invalid constraint %q: missing label name in %q", expr, key)
	}
	if c.kind == keyRole && !strings.EqualFold(value, string(swarm.NodeRoleManager)) && !strings.EqualFold(value, string(swarm.NodeRoleWorker)) {
		return c, fmt.Errorf("invalid constraint %q: node.role must be %q or %q", expr, swarm.NodeRoleManager, swarm.NodeRoleWorker)
	}
	return c, nil
}

// operatorIndex finds the first operator in expr.
func operatorIndex(expr string) (int, Operator) {
	eq := strings.Index(expr, string(OpEqual))
	ne := strings.Index(expr, string(OpNotEqual))
	switch {
	case eq < 0 && ne < 0:
		return -1, ""
	case ne < 0 || (eq >= 0 && eq < ne):
		return eq, OpEqual
	default:
		return ne, OpNotEqual
	}
}

// Matches reports whether node n satisfies the constraint. Values compare
// case-insensitively (label names are case-sensitive), as in swarm; a missing
// label or field compares as "", so == fails and != passes.
func (c Constraint) Matches(n *state.Node) bool {
	var have []string
	switch c.kind {
	case keyNodeID:
		have = []string{n.ID}
	case keyHostname:
		have = []string{n.Description.Hostname}
	case keyRole:
		have = []string{string(nodeRole(n))}
	case keyOS:
		have = []string{n.Description.Platform.OS}
	case keyArch:
		// Docker reports x86_64/aarch64 where Go says amd64/arm64: accept
		// either spelling.
		arch := n.Description.Platform.Architecture
		have = []string{arch, normalizeArch(arch)}
	case keyNodeLabel:
		have = []string{n.Spec.Labels[c.label]}
	case keyEngineLabel:
		have = []string{n.Description.Engine.Labels[c.label]}
	default:
		return false
	}
	want := c.Value
	if c.kind == keyArch {
		want = normalizeArch(want)
	}
	match := false
	for _, h := range have {
		if strings.EqualFold(h, want) || strings.EqualFold(h, c.Value) {
			match = true
			break
		}
	}
	if c.Op == OpNotEqual {
		return !match
	}
	return match
}

// NodeMatches reports whether node n satisfies every constraint.
func NodeMatches(cs []Constraint, n *state.Node) bool {
	for i := range cs {
		if !cs[i].Matches(n) {
			return false
		}
	}
	return true
}

// nodeRole is the role the node's certificate carries, or the one asked
// for when that is not set yet.
func nodeRole(n *state.Node) swarm.NodeRole {
	if n.Role != "" {
		return n.Role
	}
	return n.Spec.Role
}

func normalizeArch(a string) string {
	switch strings.ToLower(a) {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}

// ValidatePreferences checks placement preferences for the API: each must be
// a spread over node.labels.<label> or engine.labels.<label>.
func ValidatePreferences(prefs []swarm.PlacementPreference) error {
	for _, p := range prefs {
		if p.Spread == nil {
			return fmt.Errorf("invalid placement preference: only spread is supported")
		}
		if _, _, ok := spreadLabel(p.Spread.SpreadDescriptor); !ok {
			return fmt.Errorf("invalid placement preference %q: spread over node.labels.<label> or engine.labels.<label>", p.Spread.SpreadDescriptor)
		}
	}
	return nil
}

// spreadLabel splits a spread descriptor into (engine?, label name).
func spreadLabel(desc string) (engine bool, label string, ok bool) {
	lower := strings.ToLower(desc)
	switch {
	case strings.HasPrefix(lower, NodeLabelPrefix) && len(desc) > len(NodeLabelPrefix):
		return false, desc[len(NodeLabelPrefix):], true
	case strings.HasPrefix(lower, EngineLabelPrefix) && len(desc) > len(EngineLabelPrefix):
		return true, desc[len(EngineLabelPrefix):], true
	}
	return false, "", false
}
