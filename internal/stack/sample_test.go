package stack

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// The sandbox deploys the repository's sample compose file: it must load
// and convert, with no warning, on either driver, taking the variables
// given over the process's environment.
func TestTheSampleComposeFileConverts(t *testing.T) {
	t.Setenv("SAMPLE_DRIVER", "from-the-environment")
	file := filepath.Join("..", "..", "examples", "sample", "compose.yml")
	for _, driver := range []string{"docker", "process"} {
		var libWarnings bytes.Buffer
		env := []string{"SAMPLE_DRIVER=" + driver, "SAMPLE_IMAGE=flotilla-test/sample", "SAMPLE_PROGRAM=/opt/flotilla", "SAMPLE_PORT=8089"}
		p, warnings, err := Load(t.Context(), "sample", []string{file}, env, &libWarnings)
		if err != nil {
			t.Fatal(err)
		}
		if len(warnings) > 0 || libWarnings.Len() > 0 {
			t.Errorf("%s: warnings: %q %s", driver, warnings, libWarnings.String())
		}
		plan, err := Convert("sample", p)
		if err != nil {
			t.Fatal(err)
		}
		web, api := plan.services["sample_web"], plan.services["sample_api"]
		for _, s := range []string{"sample_web", "sample_api"} {
			cs := plan.services[s].TaskTemplate.ContainerSpec
			if cs == nil || cs.Image != "flotilla-test/sample" || cs.Labels[driverLabel] != driver ||
				len(cs.Command) != 1 || cs.Command[0] != "/opt/flotilla" || cs.Args[0] != "sample-web" {
				t.Fatalf("%s: %s: container spec %+v", driver, s, cs)
			}
		}
		if web.Mode.Global == nil || len(web.EndpointSpec.Ports) != 1 || web.EndpointSpec.Ports[0].PublishedPort != 8089 {
			t.Errorf("%s: web is not global and published on 8089: %+v %+v", driver, web.Mode, web.EndpointSpec)
		}
		if !strings.Contains(strings.Join(web.TaskTemplate.ContainerSpec.Args, " "), "--backend api:80") {
			t.Errorf("%s: web does not ask api by name: %q", driver, web.TaskTemplate.ContainerSpec.Args)
		}
		if cs := api.TaskTemplate.ContainerSpec; len(cs.Secrets) != 1 || cs.Secrets[0].SecretName != "sample_api_token" {
			t.Errorf("%s: api's secrets: %+v", driver, cs.Secrets)
		}
		if cs := web.TaskTemplate.ContainerSpec; len(cs.Configs) != 1 || cs.Configs[0].File.Name != "/etc/sample/motd.txt" {
			t.Errorf("%s: web's configs: %+v", driver, cs.Configs)
		}
		if len(plan.secrets) != 1 || len(plan.secrets[0].data) == 0 || len(plan.configs) != 1 || len(plan.configs[0].data) == 0 {
			t.Errorf("%s: the secret and config files were not read: %+v %+v", driver, plan.secrets, plan.configs)
		}
		if _, ok := plan.networks["sample_app"]; !ok || len(plan.networks) != 1 {
			t.Errorf("%s: networks %v, want sample_app", driver, plan.networks)
		}
	}
}
