package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestParseNetwork(t *testing.T) {
	ok := []struct {
		in   string
		want swarm.NetworkAttachmentConfig
	}{
		{"web", swarm.NetworkAttachmentConfig{Target: "web"}},
		{"name=web", swarm.NetworkAttachmentConfig{Target: "web"}},
		{"name=web,alias=front,alias=www.example", swarm.NetworkAttachmentConfig{Target: "web", Aliases: []string{"front", "www.example"}}},
		{"name=web,driver-opt=a=b", swarm.NetworkAttachmentConfig{Target: "web", DriverOpts: map[string]string{"a": "b"}}},
	}
	for _, c := range ok {
		got, err := parseNetwork(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseNetwork(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := map[string]string{
		"":                      "the network name is missing",
		"alias=x":               "the network name is missing",
		"name=web,alias":        "not key=value",
		"name=web,ip=10.0.0":    `unknown key "ip"`,
		"name=web,driver-opt=x": "driver-opt",
	}
	for in, want := range bad {
		if _, err := parseNetwork(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseNetwork(%q) error %v; want one mentioning %q", in, err, want)
		}
	}
}

func TestEditNetworksKeepsTheOthers(t *testing.T) {
	nets := []swarm.NetworkAttachmentConfig{{Target: "id-web", Aliases: []string{"w"}}, {Target: "id-db"}, {Target: "id-cache"}}
	ids := map[string]string{"db": "id-db", "extra": "id-extra"}
	add, _ := parseNetworks([]string{"extra", "name=other,alias=o"})
	if err := editNetworks(&nets, []string{"db", "id-cache"}, add, ids); err != nil {
		t.Fatal(err)
	}
	want := []swarm.NetworkAttachmentConfig{{Target: "id-web", Aliases: []string{"w"}}, {Target: "extra"}, {Target: "other", Aliases: []string{"o"}}}
	if !reflect.DeepEqual(nets, want) {
		t.Errorf("networks after the edit: %+v; want %+v", nets, want)
	}
	if err := editNetworks(&nets, []string{"nosuch"}, nil, ids); err == nil || !strings.Contains(err.Error(), "not attached") {
		t.Errorf("--network-rm of a network the service is not on: %v", err)
	}
	ids["web"] = "id-web"
	if err := editNetworks(&nets, nil, []swarm.NetworkAttachmentConfig{{Target: "web"}}, ids); err == nil || !strings.Contains(err.Error(), "already attached to network web") {
		t.Errorf("--network-add of a network the service is on: %v", err)
	}
}
