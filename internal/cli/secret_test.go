package cli_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

func TestSecretAndConfigCommands(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("POST /secrets/create", http.StatusCreated, swarm.SecretCreateResponse{ID: "sec0000000000000000000001"})
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, f.host, "secret", "create", "--label", "env=prod", "db_pw", file)
	if strings.TrimSpace(r.stdout) != "sec0000000000000000000001" {
		t.Errorf("stdout = %q", r.stdout)
	}
	spec := decodeBody[swarm.SecretSpec](t, f.only("POST", "/secrets/create")[0])
	if spec.Name != "db_pw" || string(spec.Data) != "hunter2" || spec.Labels["env"] != "prod" || spec.Templating != nil {
		t.Errorf("secret create sent %+v", spec)
	}
	mustRun(t, f.host, "secret", "create", "--template-driver", "golang", "x", file)
	if spec := decodeBody[swarm.SecretSpec](t, f.only("POST", "/secrets/create")[1]); spec.Templating == nil || spec.Templating.Name != "golang" {
		t.Errorf("--template-driver not sent (the managers refuse it): %+v", spec)
	}
	if r := run(t, f.host, "secret", "create", "x", filepath.Join(t.TempDir(), "missing")); r.err == nil {
		t.Error("a missing file was accepted")
	}

	now := time.Now()
	f.reply("GET /configs", http.StatusOK, []swarm.Config{
		{ID: "cfgb", Meta: swarm.Meta{CreatedAt: now, UpdatedAt: now}, Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "b.conf"}}},
		{ID: "cfga", Meta: swarm.Meta{CreatedAt: now, UpdatedAt: now}, Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "a.conf", Labels: map[string]string{"k": "v"}}}},
	})
	r = mustRun(t, f.host, "config", "ls")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "NAME") || !strings.Contains(lines[0], "CREATED") ||
		!strings.HasPrefix(lines[1], "cfga") || !strings.Contains(lines[1], "ago") {
		t.Errorf("config ls:\n%s", r.stdout)
	}
	if r := mustRun(t, f.host, "config", "ls", "-q", "-f", "label=k"); strings.Fields(r.stdout)[0] != "cfga" {
		t.Errorf("config ls -q: %q", r.stdout)
	}
	if q := f.only("GET", "/configs"); !strings.Contains(q[len(q)-1].Query.Get("filters"), `"label":{"k":true}`) {
		t.Errorf("filters sent: %v", q[len(q)-1].Query)
	}
	f.reply("DELETE /configs/a.conf", http.StatusNoContent, nil)
	if r := mustRun(t, f.host, "config", "rm", "a.conf"); strings.TrimSpace(r.stdout) != "a.conf" {
		t.Errorf("config rm printed %q", r.stdout)
	}
}

func TestServiceCreateSendsSecretsAndConfigs(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("POST /services/create", http.StatusCreated, swarm.ServiceCreateResponse{ID: svcWebID})
	mustRun(t, f.host, "service", "create", "-d", "--secret", "pw", "--secret", "source=key,target=k,mode=0400",
		"--config", "source=app.conf,target=/etc/app.conf,uid=10", "busybox")
	cs := createdSpec(t, f).TaskTemplate.ContainerSpec
	if len(cs.Secrets) != 2 || cs.Secrets[0].SecretName != "pw" || cs.Secrets[1].File.Name != "k" || cs.Secrets[1].File.Mode != 0o400 ||
		len(cs.Configs) != 1 || cs.Configs[0].ConfigName != "app.conf" || cs.Configs[0].File.UID != "10" {
		t.Errorf("container spec = %s", specJSON(createdSpec(t, f)))
	}
}

func TestConfigInspectPretty(t *testing.T) {
	f := newFakeAPI(t)
	f.reply("GET /configs/app.conf", http.StatusOK, swarm.Config{ID: "cfga", Spec: swarm.ConfigSpec{
		Annotations: swarm.Annotations{Name: "app.conf", Labels: map[string]string{"k": "v"}}, Data: []byte("listen 80")}})
	r := mustRun(t, f.host, "config", "inspect", "--pretty", "app.conf")
	for _, want := range []string{"ID:              cfga", "Name:              app.conf", " - k=v", "Data:\nlisten 80"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("config inspect --pretty lacks %q:\n%s", want, r.stdout)
		}
	}
}
