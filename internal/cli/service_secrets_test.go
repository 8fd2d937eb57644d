package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestParseSecretAndConfigRefs(t *testing.T) {
	got, err := parseSecretRefs("secret", []string{"pw", "source=tls.key,target=server.key,uid=100,gid=101,mode=0400"})
	if err != nil {
		t.Fatal(err)
	}
	want := []*swarm.SecretReference{
		{SecretName: "pw", File: &swarm.SecretReferenceFileTarget{}},
		{SecretName: "tls.key", File: &swarm.SecretReferenceFileTarget{Name: "server.key", UID: "100", GID: "101", Mode: 0o400}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("secrets = %+v %+v", got[0].File, got[1].File)
	}
	cfg, err := parseConfigRefs("config", []string{"src=app.conf,target=/etc/app.conf"})
	if err != nil || cfg[0].ConfigName != "app.conf" || cfg[0].File.Name != "/etc/app.conf" {
		t.Errorf("configs = %+v, %v", cfg, err)
	}
	for in, msg := range map[string]string{
		"target=x":         "the source",
		"source=a,mode=rw": "not an octal file mode",
		"source=a,size=1":  `unknown key "size"`,
		"source=a,target":  "not key=value",
	} {
		if _, err := parseSecretRefs("secret", []string{in}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", in, err, msg)
		}
	}
}

func TestEditSecretRefsKeepsTheOthers(t *testing.T) {
	refs := []*swarm.SecretReference{{SecretName: "a", SecretID: "id-a"}, {SecretName: "b", SecretID: "id-b"}, {SecretName: "c", SecretID: "id-c"}}
	add, _ := parseSecretRefs("secret-add", []string{"d"})
	if err := editRefs(&refs, []string{"a", "id-c"}, add, secretNames, "secret"); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range refs {
		names = append(names, r.SecretName)
	}
	if strings.Join(names, ",") != "b,d" {
		t.Errorf("after the edit: %v", names)
	}
	if err := editRefs(&refs, []string{"zz"}, nil, secretNames, "secret"); err == nil || !strings.Contains(err.Error(), "invalid --secret-rm zz") {
		t.Errorf("removing a missing one: %v", err)
	}
}

func TestReadBlobFromStdinOrFile(t *testing.T) {
	got, err := readBlob(strings.NewReader("from stdin"), "-")
	if err != nil || string(got) != "from stdin" {
		t.Errorf("stdin: %q %v", got, err)
	}
	if _, err := readBlob(strings.NewReader(strings.Repeat("x", maxBlobRead+1)), "-"); err == nil || !strings.Contains(err.Error(), "limited to 500 KiB") {
		t.Errorf("oversized: %v", err)
	}
	if _, err := readBlob(nil, "/nonexistent/file"); err == nil {
		t.Error("a missing file was read")
	}
}
