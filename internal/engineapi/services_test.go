package engineapi

import (
	"strings"
	"testing"
)

// A service's networks reach the backend from TaskTemplate.Networks, or
// from the top-level Networks older clients send (moved as dockerd does).
func TestServiceNetworksPassedThrough(t *testing.T) {
	f := newFakeCluster()
	for _, body := range []string{
		`{"Name":"a","TaskTemplate":{"ContainerSpec":{"Image":"x"},"Networks":[{"Target":"web","Aliases":["www"]}]}}`,
		`{"Name":"b","TaskTemplate":{"ContainerSpec":{"Image":"x"}},"Networks":[{"Target":"web","Aliases":["www"]}]}`,
	} {
		rec := serve(t, NewHandler(f), "POST", "/v1.41/services/create", body)
		wantStatus(t, rec, 201)
	}
	for _, spec := range f.created {
		n := spec.TaskTemplate.Networks
		if len(n) != 1 || n[0].Target != "web" || len(n[0].Aliases) != 1 || n[0].Aliases[0] != "www" {
			t.Errorf("service %s reached the backend with networks %+v", spec.Name, n)
		}
	}
	id := f.services[0].ID
	rec := serve(t, NewHandler(f), "POST", "/v1.41/services/"+id+"/update?version=1",
		`{"Name":"a","TaskTemplate":{"ContainerSpec":{"Image":"x"}},"Networks":[{"Target":"back"}]}`)
	wantStatus(t, rec, 200)
	if u := f.updated; len(u) != 1 || len(u[0].Spec.TaskTemplate.Networks) != 1 || u[0].Spec.TaskTemplate.Networks[0].Target != "back" {
		t.Errorf("update reached the backend as %+v", u)
	}

	rec = serve(t, NewHandler(f), "POST", "/v1.41/services/create",
		`{"Name":"c","TaskTemplate":{"ContainerSpec":{"Image":"x"},"Networks":[{"Target":"web"}]},"Networks":[{"Target":"back"}]}`)
	wantStatus(t, rec, 400)
	if msg := errorMessage(t, rec); !strings.Contains(msg, "give them in TaskTemplate.Networks only") {
		t.Errorf("both kinds of networks: %q", msg)
	}
	if len(f.created) != 2 {
		t.Errorf("a refused spec was created")
	}
}

// The docker CLI resolves --network names to IDs through the networks
// API (and checks they are of swarm scope) before it sends the spec.
func TestDockerCLIServiceNetworks(t *testing.T) {
	needDocker(t)
	f := networksCluster()
	s := startCLIServer(t, f)
	s.ok("service", "create", "-d", "--name", "app", "--network", "web", "--network", "name=back,alias=db", "--endpoint-mode", "dnsrr", "nginx")
	if len(f.created) != 1 {
		t.Fatalf("created %d services", len(f.created))
	}
	spec := f.created[0]
	got := map[string][]string{}
	for _, a := range spec.TaskTemplate.Networks {
		got[a.Target] = append(a.Aliases, "")
	}
	if len(got) != 2 || len(got[netWeb]) != 1 || len(got[netBack]) != 2 || got[netBack][0] != "db" {
		t.Errorf("docker service create sent networks %+v, want web's and back's IDs, back with alias db", spec.TaskTemplate.Networks)
	}
	if spec.EndpointSpec == nil || spec.EndpointSpec.Mode != "dnsrr" {
		t.Errorf("endpoint spec %+v, want mode dnsrr", spec.EndpointSpec)
	}
	s.ok("service", "update", "-d", "--network-rm", "web", "app")
	if u := f.updated; len(u) != 1 || len(u[0].Spec.TaskTemplate.Networks) != 1 || u[0].Spec.TaskTemplate.Networks[0].Target != netBack {
		t.Errorf("docker service update --network-rm sent %+v", u)
	}
}
