package daemon

import (
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestJoinConfigCheck(t *testing.T) {
	const tok = "SWMTKN-1-0000000000000000000000000000000000000000000000000a-000000000000000000000000b"
	const secret = "0123456789abcdef0123"
	ok := []JoinConfig{
		{},
		{Spec: "127.0.0.1:2377", Token: tok},
		{Spec: "dns:m.example", BootstrapToken: secret},
		{Spec: "file:/x", BootstrapToken: secret, BootstrapExpect: 3},
		{Spec: "file:/x", BootstrapToken: secret, Role: swarm.NodeRoleManager},
	}
	for _, c := range ok {
		if err := c.Check(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := map[string]JoinConfig{
		"need --join SPEC":           {Token: tok},
		"--join: empty":              {Spec: " ", Token: tok},
		"needs --join-token":         {Spec: "127.0.0.1"},
		"--join-token: not a join":   {Spec: "127.0.0.1", Token: "nope"},
		"give one or the other":      {Spec: "127.0.0.1", Token: tok, BootstrapExpect: 3},
		"at least 16 characters":     {Spec: "127.0.0.1", BootstrapToken: "short"},
		"must be a positive":         {Spec: "127.0.0.1", BootstrapToken: secret, BootstrapExpect: -1},
		"cannot take part":           {Spec: "127.0.0.1", BootstrapToken: secret, BootstrapExpect: 3, Role: swarm.NodeRoleWorker},
		`--role "boss"`:              {Spec: "127.0.0.1", BootstrapToken: secret, Role: "boss"},
		`no provider "nothing-here"`: {Spec: "provider=nothing-here", BootstrapToken: secret},
	}
	for want, c := range bad {
		if err := c.Check(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: err = %v, want one containing %q", c, err, want)
		}
	}
}

// Every node must order the same addresses the same way, whatever the
// order the provider gave them in: the first is the only initialiser.
func TestCompareAddrs(t *testing.T) {
	in := []string{"127.0.0.10:2377", "127.0.0.9:2377", "127.0.0.9:10000", "127.0.0.9:9000", "[::1]:2377"}
	// By IP bytes: ::1 is below every IPv4-mapped address.
	want := []string{"[::1]:2377", "127.0.0.9:2377", "127.0.0.9:9000", "127.0.0.9:10000", "127.0.0.10:2377"}
	for range 5 {
		got := slices.Clone(in)
		slices.SortFunc(got, compareAddrs)
		if !slices.Equal(got, want) {
			t.Fatalf("sorted %v, want %v", got, want)
		}
		slices.Reverse(in)
	}
}
