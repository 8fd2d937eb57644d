package stack

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// A stack deployed through the package (as the sandbox does) is made of
// objects that carry its namespace; deployed again unchanged, nothing
// changes; removed, nothing of it is left.
func TestDeployRedeployRemove(t *testing.T) {
	file := filepath.Join("..", "..", "examples", "sample", "compose.yml")
	env := []string{"SAMPLE_DRIVER=process", "SAMPLE_PROGRAM=/opt/flotilla"}
	p, _, err := Load(t.Context(), "demo", []string{file}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Convert("demo", p)
	if err != nil {
		t.Fatal(err)
	}
	api := newFakeAPI()
	var out bytes.Buffer
	changes, err := Deploy(t.Context(), api, &out, io.Discard, "demo", plan, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0].Name != "demo_api" || changes[1].Name != "demo_web" || changes[0].Updated {
		t.Errorf("changes = %+v, want demo_api and demo_web created", changes)
	}
	if len(api.services) != 2 || len(api.networks) != 1 || len(api.secrets) != 1 || len(api.configs) != 1 {
		t.Fatalf("deployed %d services, %d networks, %d secrets, %d configs; want 2, 1, 1, 1:\n%s",
			len(api.services), len(api.networks), len(api.secrets), len(api.configs), out.String())
	}
	for _, s := range api.services {
		if s.Spec.Labels[NamespaceLabel] != "demo" {
			t.Errorf("service %s has no namespace label: %v", s.Spec.Name, s.Spec.Labels)
		}
	}

	// From the file again, as a second `stack deploy` would.
	if plan, err = Convert("demo", p); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if changes, err = Deploy(t.Context(), api, &out, io.Discard, "demo", plan, false); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 || !strings.Contains(out.String(), "Service demo_web is up to date") {
		t.Errorf("a redeploy of the same file changed %+v:\n%s", changes, out.String())
	}

	out.Reset()
	if err := Remove(t.Context(), api, &out, io.Discard, "demo"); err != nil {
		t.Fatal(err)
	}
	if len(api.services)+len(api.networks)+len(api.secrets)+len(api.configs) != 0 {
		t.Errorf("Remove left %v %v %v %v", api.services, api.networks, api.secrets, api.configs)
	}
	for _, want := range []string{"Removing service demo_api", "Removing secret demo_api_token", "Removing config demo_motd", "Removing network demo_app"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Remove did not say %q:\n%s", want, out.String())
		}
	}
}
