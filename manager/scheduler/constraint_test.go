package scheduler

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestParseConstraints(t *testing.T) {
	ok := []struct {
		expr string
		want Constraint
	}{
		{"node.role==worker", Constraint{Key: "node.role", Op: OpEqual, Value: "worker"}},
		{"node.role == manager", Constraint{Key: "node.role", Op: OpEqual, Value: "manager"}},
		{"node.role!=Manager", Constraint{Key: "node.role", Op: OpNotEqual, Value: "Manager"}},
		{"NODE.Hostname==web-1", Constraint{Key: "NODE.Hostname", Op: OpEqual, Value: "web-1"}},
		{"node.id==abc123", Constraint{Key: "node.id", Op: OpEqual, Value: "abc123"}},
		{"node.platform.os==linux", Constraint{Key: "node.platform.os", Op: OpEqual, Value: "linux"}},
		{"node.platform.arch!=arm64", Constraint{Key: "node.platform.arch", Op: OpNotEqual, Value: "arm64"}},
		{"node.labels.com.example.zone==eu-west/1", Constraint{Key: "node.labels.com.example.zone", Op: OpEqual, Value: "eu-west/1"}},
		{"engine.labels.disk==ssd", Constraint{Key: "engine.labels.disk", Op: OpEqual, Value: "ssd"}},
	}
	for _, tc := range ok {
		cs, err := ParseConstraints([]string{tc.expr})
		if err != nil {
			t.Errorf("ParseConstraints(%q): %v", tc.expr, err)
			continue
		}
		got := cs[0]
		if got.Key != tc.want.Key || got.Op != tc.want.Op || got.Value != tc.want.Value {
			t.Errorf("ParseConstraints(%q) = %+v, want %+v", tc.expr, got, tc.want)
		}
		if s := got.String(); !strings.Contains(tc.expr, string(got.Op)) || s != got.Key+string(got.Op)+got.Value {
			t.Errorf("String() = %q", s)
		}
	}

	bad := []struct {
		expr, want string
	}{
		{"node.role=worker", `invalid constraint "node.role=worker": expected an operator == or !=; did you mean "node.role==worker"?`},
		{"node.role", `invalid constraint "node.role": expected an operator == or !=`},
		{"node.role~=manager", `did you mean "node.role==manager"?`},
		{"node.role==", `invalid constraint "node.role==": empty value after ==`},
		{"node.labels.zone!=  ", `invalid constraint "node.labels.zone!=  ": empty value after !=`},
		{"==worker", `invalid constraint "==worker": missing key before ==`},
		{"node.name==web", `invalid constraint "node.name==web": unknown key "node.name" (known keys: node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<label>, engine.labels.<label>)`},
		{"role==worker", `unknown key "role"`},
		{"node.labels==x", `missing label name in "node.labels"`},
		{"node.labels.==x", `missing label name in "node.labels."`},
		{"node.role===worker", `value "=worker" is invalid`},
		{"node.role==worker==x", `value "worker==x" is invalid`},
		{"node.labels.a<=b", `expected an operator`},
		{"node.labels.a==b>c", `value "b>c" is invalid`},
		{"node role==worker", `key "node role" is invalid`},
		{"node.role==boss", `node.role must be "manager" or "worker"`},
	}
	for _, tc := range bad {
		_, err := ParseConstraints([]string{"node.role==worker", tc.expr})
		if err == nil {
			t.Errorf("ParseConstraints(%q): no error", tc.expr)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConstraints(%q) = %q, want it to contain %q", tc.expr, err, tc.want)
		}
	}

	if cs, err := ParseConstraints(nil); err != nil || len(cs) != 0 {
		t.Errorf("ParseConstraints(nil) = %v, %v", cs, err)
	}
}

func TestConstraintMatches(t *testing.T) {
	n := mkNode("abc", label("zone", "East"), engineLabel("disk", "ssd"), platform("linux", "aarch64"), manager)
	cases := []struct {
		expr string
		want bool
	}{
		{"node.id==abc", true},
		{"node.id==ABC", true},
		{"node.id!=abc", false},
		{"node.hostname==host-abc", true},
		{"node.role==manager", true},
		{"node.role==worker", false},
		{"node.role!=worker", true},
		{"node.platform.os==Linux", true},
		{"node.platform.arch==arm64", true},
		{"node.platform.arch==aarch64", true},
		{"node.platform.arch!=arm64", false},
		{"node.platform.arch==amd64", false},
		{"node.labels.zone==east", true},
		{"node.labels.Zone==east", false}, // label names are case-sensitive
		{"node.labels.rack==1", false},    // missing: == fails
		{"node.labels.rack!=1", true},     // missing: != passes
		{"engine.labels.disk==SSD", true},
		{"engine.labels.zone==east", false},
	}
	for _, tc := range cases {
		cs, err := ParseConstraints([]string{tc.expr})
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := NodeMatches(cs, n); got != tc.want {
			t.Errorf("%s on node: %v, want %v", tc.expr, got, tc.want)
		}
	}
	// A role not yet in the certificate falls back to the spec's.
	w := mkNode("w")
	w.Role = ""
	w.Spec.Role = swarm.NodeRoleManager
	cs, _ := ParseConstraints([]string{"node.role==manager"})
	if !NodeMatches(cs, w) {
		t.Error("node.role does not fall back to Spec.Role")
	}
}

func TestValidatePreferences(t *testing.T) {
	pref := func(d string) swarm.PlacementPreference {
		return swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: d}}
	}
	if err := ValidatePreferences([]swarm.PlacementPreference{pref("node.labels.zone"), pref("engine.labels.rack")}); err != nil {
		t.Errorf("valid preferences: %v", err)
	}
	for _, p := range []swarm.PlacementPreference{pref("node.hostname"), pref("node.labels."), pref(""), {}} {
		if err := ValidatePreferences([]swarm.PlacementPreference{p}); err == nil {
			t.Errorf("ValidatePreferences(%+v): no error", p)
		}
	}
}
