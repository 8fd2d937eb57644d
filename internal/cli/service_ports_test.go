package cli

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestParsePublish(t *testing.T) {
	ok := []struct {
		in   string
		want swarm.PortConfig
	}{
		{"8080:80", swarm.PortConfig{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress"}},
		{"80", swarm.PortConfig{Protocol: "tcp", TargetPort: 80, PublishMode: "ingress"}},
		{"53:53/udp", swarm.PortConfig{Protocol: "udp", TargetPort: 53, PublishedPort: 53, PublishMode: "ingress"}},
		{"published=8080,target=80", swarm.PortConfig{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress"}},
		{"target=80,mode=host,protocol=TCP", swarm.PortConfig{Protocol: "tcp", TargetPort: 80, PublishMode: "host"}},
	}
	for _, c := range ok {
		got, err := parsePublish(c.in)
		if err != nil || got != c.want {
			t.Errorf("parsePublish(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := map[string]string{
		"":                       "not a port",
		"8080:":                  "not a port",
		"0:80":                   "not a port",
		"8080:70000":             "not a port",
		"8080-8081:80-81":        "ranges",
		"8080:80/icmp":           "protocol",
		"published=8080":         "target port is missing",
		"target=80,mode=bridge":  "mode",
		"target=80,colour=green": "unknown key",
		"target=80,published":    "not key=value",
	}
	for in, want := range bad {
		if _, err := parsePublish(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parsePublish(%q) error %v; want one mentioning %q", in, err, want)
		}
	}
}

func TestEditPortsKeepsTheOthers(t *testing.T) {
	ep := &swarm.EndpointSpec{Mode: "vip", Ports: []swarm.PortConfig{
		{Protocol: "tcp", TargetPort: 80, PublishedPort: 8080},
		{Protocol: "tcp", TargetPort: 443, PublishedPort: 8443},
		{Protocol: "udp", TargetPort: 53, PublishedPort: 53},
	}}
	add, _ := parsePublish("9090:90")
	repl, _ := parsePublish("8081:80")
	if err := editPorts(&ep, []string{"53/udp"}, []swarm.PortConfig{add, repl}); err != nil {
		t.Fatal(err)
	}
	got := map[uint32]uint32{}
	for _, p := range ep.Ports {
		got[p.TargetPort] = p.PublishedPort
	}
	want := map[uint32]uint32{80: 8081, 443: 8443, 90: 9090}
	if len(got) != len(want) || got[80] != 8081 || got[443] != 8443 || got[90] != 9090 {
		t.Errorf("ports after the edit: %v; want %v", got, want)
	}
	if err := editPorts(&ep, []string{"http"}, nil); err == nil {
		t.Errorf("--publish-rm http was accepted")
	}
}
