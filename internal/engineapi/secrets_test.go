package engineapi

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestSecretsAPI(t *testing.T) {
	f := newFakeCluster()
	h := NewHandler(f)
	data := base64.StdEncoding.EncodeToString([]byte("hunter2"))
	for _, name := range []string{"db.pass", "api-key"} {
		rec := serve(t, h, "POST", "/v1.47/secrets/create", `{"Name":"`+name+`","Labels":{"tier":"`+name+`"},"Data":"`+data+`"}`)
		wantStatus(t, rec, 201)
		var resp map[string]string
		decodeJSON(t, rec, &resp)
		if !strings.HasPrefix(resp["ID"], "sec") || len(resp) != 1 {
			t.Errorf("create answer = %v, want {ID}", resp)
		}
	}
	if string(f.secrets[0].Spec.Data) != "hunter2" {
		t.Fatalf("stored data = %q", f.secrets[0].Spec.Data)
	}
	wantStatus(t, serve(t, h, "POST", "/secrets/create", `{"Name":"db.pass","Data":"`+data+`"}`), 409)

	list := func(filters string) []string {
		t.Helper()
		rec := serve(t, h, "GET", "/v1.47/secrets?filters="+filters, "")
		wantStatus(t, rec, 200)
		var out []swarm.Secret
		decodeJSON(t, rec, &out)
		var names []string
		for _, s := range out {
			if s.Spec.Data != nil {
				t.Errorf("GET /secrets returned the data of %s", s.Spec.Name)
			}
			names = append(names, s.Spec.Name)
		}
		return names
	}
	for filters, want := range map[string]string{
		``:                                "api-key db.pass",
		`{"names":{"db.pass":true}}`:      "db.pass",
		`{"names":{"db":true}}`:           "",
		`{"name":{"db":true}}`:            "db.pass",
		`{"id":{"sec0000":true}}`:         "api-key db.pass",
		`{"label":{"tier=api-key":true}}`: "api-key",
		`{"label":{"tier":true}}`:         "api-key db.pass",
		`{"names":{"db.pass":true},"name":{"api":true}}`: "api-key db.pass",
	} {
		if got := strings.Join(list(filters), " "); got != want {
			t.Errorf("filters %s: %q, want %q", filters, got, want)
		}
	}
	wantStatus(t, serve(t, h, "GET", "/secrets?filters="+`{"driver":{"x":true}}`, ""), 400)

	// Inspect by name and ID (prefixes: the docker CLI test); never the data.
	for _, ref := range []string{"db.pass", f.secrets[0].ID} {
		rec := serve(t, h, "GET", "/v1.47/secrets/"+ref, "")
		wantStatus(t, rec, 200)
		if strings.Contains(rec.Body.String(), data) || strings.Contains(rec.Body.String(), `"Data"`) {
			t.Errorf("inspect %s shows the data: %s", ref, rec.Body)
		}
	}
	rec := serve(t, h, "GET", "/secrets/sec", "")
	wantStatus(t, rec, 400)
	wantContains(t, "ambiguous", rec.Body.String(), "secret sec is ambiguous (2 matches found)")
	rec = serve(t, h, "GET", "/secrets/nope", "")
	wantStatus(t, rec, 404)
	wantContains(t, "not found", rec.Body.String(), "secret nope not found")

	// Update needs the version; remove answers 204.
	wantStatus(t, serve(t, h, "POST", "/secrets/db.pass/update", `{"Name":"db.pass","Labels":{"a":"b"}}`), 400)
	wantStatus(t, serve(t, h, "POST", "/secrets/db.pass/update?version=7", `{"Name":"db.pass","Labels":{"a":"b"}}`), 200)
	if len(f.secUpdates) != 1 || f.secUpdates[0] != f.secrets[0].ID+"@7 map[a:b]" {
		t.Errorf("updates = %v", f.secUpdates)
	}
	wantStatus(t, serve(t, h, "DELETE", "/secrets/api-key", ""), 204)
	if got := strings.Join(list(""), " "); got != "db.pass" {
		t.Errorf("after rm: %q", got)
	}

	// A body over the general 1 MiB limit still reaches the managers, so
	// an oversized secret gets Docker's message from them.
	big := base64.StdEncoding.EncodeToString(make([]byte, 900*1024))
	wantStatus(t, serve(t, h, "POST", "/secrets/create", `{"Name":"big","Data":"`+big+`"}`), 201)
}

func TestConfigsAPI(t *testing.T) {
	f := newFakeCluster()
	h := NewHandler(f)
	data := base64.StdEncoding.EncodeToString([]byte("listen 80"))
	wantStatus(t, serve(t, h, "POST", "/configs/create", `{"Name":"nginx.conf","Data":"`+data+`"}`), 201)
	rec := serve(t, h, "GET", "/v1.47/configs/nginx.conf", "")
	wantStatus(t, rec, 200)
	var c swarm.Config
	decodeJSON(t, rec, &c)
	if string(c.Spec.Data) != "listen 80" {
		t.Errorf("config inspect data = %q, want it shown", c.Spec.Data)
	}
	wantStatus(t, serve(t, h, "DELETE", "/configs/"+c.ID, ""), 204)
	wantStatus(t, serve(t, h, "DELETE", "/configs/"+c.ID, ""), 404)
}

func TestDockerCLISecretsAndConfigs(t *testing.T) {
	needDocker(t)
	f := newFakeCluster()
	s := startCLIServer(t, f)
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("s3cret-bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(s.ok("secret", "create", "--label", "env=prod", "db_pw", file))
	if len(f.secrets) != 1 || f.secrets[0].ID != id || string(f.secrets[0].Spec.Data) != "s3cret-bytes" || f.secrets[0].Spec.Labels["env"] != "prod" {
		t.Fatalf("docker secret create stored %+v, printed %q", f.secrets, id)
	}
	wantContains(t, "secret create twice", s.fails("secret", "create", "db_pw", file), "secret db_pw already exists")
	out := s.ok("secret", "ls")
	wantContains(t, "secret ls", out, "ID", "NAME", "CREATED", id, "db_pw")
	if got := strings.TrimSpace(s.ok("secret", "ls", "-q", "--filter", "label=env=prod")); got != id {
		t.Errorf("secret ls -q --filter label = %q", got)
	}
	insp := s.ok("secret", "inspect", "db_pw")
	wantContains(t, "secret inspect", insp, `"Name": "db_pw"`, `"env": "prod"`)
	if strings.Contains(insp, "Data") || strings.Contains(insp, "czNjcmV0") {
		t.Errorf("secret inspect shows the data:\n%s", insp)
	}
	s.ok("secret", "inspect", "--pretty", id[:6])
	// The docker CLI resolves --secret and --config names itself (GET
	// /secrets?filters=names) and sends the IDs, names and file targets.
	cid0 := strings.TrimSpace(s.ok("config", "create", "base.conf", file))
	s.ok("service", "create", "-d", "--no-resolve-image", "--name", "web", "--secret", "source=db_pw,target=pw,mode=0400",
		"--config", "base.conf", "busybox")
	if len(f.created) != 1 {
		t.Fatalf("services created: %d", len(f.created))
	}
	cs := f.created[0].TaskTemplate.ContainerSpec
	if len(cs.Secrets) != 1 || cs.Secrets[0].SecretID != id || cs.Secrets[0].SecretName != "db_pw" || cs.Secrets[0].File == nil ||
		cs.Secrets[0].File.Name != "pw" || cs.Secrets[0].File.Mode != 0o400 ||
		len(cs.Configs) != 1 || cs.Configs[0].ConfigID != cid0 || cs.Configs[0].File == nil || cs.Configs[0].File.Name != "base.conf" {
		t.Errorf("docker service create sent secrets %+v configs %+v", cs.Secrets, cs.Configs)
	}
	s.ok("config", "rm", cid0)
	if got := strings.TrimSpace(s.ok("secret", "rm", "db_pw")); got != "db_pw" {
		t.Errorf("secret rm printed %q", got)
	}
	if len(f.secrets) != 0 {
		t.Errorf("secrets after rm = %+v", f.secrets)
	}

	cid := strings.TrimSpace(s.ok("config", "create", "app.conf", file))
	insp = s.ok("config", "inspect", "--pretty", "app.conf")
	wantContains(t, "config inspect --pretty", insp, "Name:", "app.conf", "s3cret-bytes")
	wantContains(t, "config ls", s.ok("config", "ls"), cid, "app.conf")
	s.ok("config", "rm", cid)
	if len(f.configs) != 0 {
		t.Errorf("configs after rm = %+v", f.configs)
	}
}
