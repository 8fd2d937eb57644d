package manager

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

func storeSecret(ns *netStore, id, name, data string) *state.Secret {
	ns.t.Helper()
	s := &state.Secret{}
	s.ID = id
	s.Spec = swarm.SecretSpec{Annotations: swarm.Annotations{Name: name}, Data: []byte(data)}
	if err := secretKind.checkCreate(ns.s.View(), blob{Annotations: s.Spec.Annotations, Data: s.Spec.Data}); err != nil {
		ns.t.Fatal(err)
	}
	ns.apply(state.NewOp(state.TableSecrets, state.ActionCreate, s, 0))
	return ns.s.View().Secret(id)
}

func storeConfig(ns *netStore, id, name, data string) *state.Config {
	ns.t.Helper()
	c := &state.Config{}
	c.ID = id
	c.Spec = swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name}, Data: []byte(data)}
	ns.apply(state.NewOp(state.TableConfigs, state.ActionCreate, c, 0))
	return ns.s.View().Config(id)
}

func wantErr(t *testing.T, what string, err error, class errdefs.Kind, text string) {
	t.Helper()
	if err == nil || !errdefs.Is(err, class) || !strings.Contains(err.Error(), text) {
		t.Errorf("%s: err = %v, want %v containing %q", what, err, class, text)
	}
}

func TestSecretAndConfigValidation(t *testing.T) {
	ns := newNetStore(t)
	v := ns.s.View()
	ok := blob{Annotations: swarm.Annotations{Name: "db.pass_1"}, Data: []byte("x")}
	if err := secretKind.checkCreate(v, ok); err != nil {
		t.Fatalf("valid secret refused: %v", err)
	}
	for _, c := range []struct {
		k    blobKind
		b    blob
		text string
	}{
		{secretKind, blob{Data: []byte("x")}, "name must be provided"},
		{secretKind, blob{Annotations: swarm.Annotations{Name: "-bad"}, Data: []byte("x")}, "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed"},
		{configKind, blob{Annotations: swarm.Annotations{Name: strings.Repeat("a", 65)}, Data: []byte("x")}, "invalid name"},
		{secretKind, blob{Annotations: swarm.Annotations{Name: "a"}}, "secret data must be larger than 0 and less than 512000 bytes"},
		{secretKind, blob{Annotations: swarm.Annotations{Name: "a"}, Data: make([]byte, 500*1024)}, "less than 512000 bytes"},
		{configKind, blob{Annotations: swarm.Annotations{Name: "a"}, Data: make([]byte, 1000*1024)}, "config data must be larger than 0 and less than 1024000 bytes"},
		{secretKind, blob{Annotations: swarm.Annotations{Name: "a"}, Data: []byte("x"), Templating: &swarm.Driver{Name: "golang"}}, "template drivers are not supported by flotilla"},
		{configKind, blob{Annotations: swarm.Annotations{Name: "a"}, Data: []byte("x"), Templating: &swarm.Driver{Name: "golang"}}, "template drivers are not supported by flotilla"},
		{secretKind, blob{Annotations: swarm.Annotations{Name: "a"}, Data: []byte("x"), Driver: &swarm.Driver{Name: "vault"}}, "secret drivers are not supported by flotilla"},
	} {
		wantErr(t, c.b.Name, c.k.checkCreate(v, c.b), errdefs.KindInvalid, c.text)
	}
	// Just under the limits is fine.
	if err := secretKind.validate(blob{Annotations: swarm.Annotations{Name: "a"}, Data: make([]byte, 500*1024-1)}); err != nil {
		t.Error(err)
	}
	if err := configKind.validate(blob{Annotations: swarm.Annotations{Name: "a"}, Data: make([]byte, 1000*1024-1)}); err != nil {
		t.Error(err)
	}
}

func TestSecretNamesUniquePerKind(t *testing.T) {
	ns := newNetStore(t)
	storeSecret(ns, "s1", "shared", "x")
	v := ns.s.View()
	wantErr(t, "same name", secretKind.checkCreate(v, blob{Annotations: swarm.Annotations{Name: "shared"}, Data: []byte("y")}),
		errdefs.KindConflict, "secret shared already exists")
	if err := configKind.checkCreate(v, blob{Annotations: swarm.Annotations{Name: "shared"}, Data: []byte("y")}); err != nil {
		t.Errorf("a config may take a secret's name: %v", err)
	}
}

func TestSecretUpdateLabelsOnly(t *testing.T) {
	ns := newNetStore(t)
	s := storeSecret(ns, "s1", "pw", "hunter2")
	v, ver := ns.s.View(), s.Version.Index
	labels := swarm.Annotations{Name: "pw", Labels: map[string]string{"a": "b"}}
	if _, err := secretKind.checkUpdate(v, "s1", ver, blob{Annotations: labels}); err != nil {
		t.Errorf("labels only: %v", err)
	}
	if _, err := secretKind.checkUpdate(v, "s1", ver, blob{Annotations: labels, Data: []byte("hunter2")}); err != nil {
		t.Errorf("labels with the same data: %v", err)
	}
	_, err := secretKind.checkUpdate(v, "s1", ver, blob{Annotations: labels, Data: []byte("other")})
	wantErr(t, "new data", err, errdefs.KindInvalid, "only updates to Labels are allowed")
	_, err = secretKind.checkUpdate(v, "s1", ver, blob{Annotations: swarm.Annotations{Name: "renamed"}})
	wantErr(t, "rename", err, errdefs.KindInvalid, "only updates to Labels are allowed")
	_, err = secretKind.checkUpdate(v, "s1", ver+1, blob{Annotations: labels})
	wantErr(t, "old version", err, errdefs.KindConflict, "update out of sequence")
	_, err = secretKind.checkUpdate(v, "nope", ver, blob{Annotations: labels})
	wantErr(t, "missing", err, errdefs.KindNotFound, "secret nope not found")
}

func TestSecretInUseAndServiceReferences(t *testing.T) {
	ns := newNetStore(t)
	storeSecret(ns, "s1", "pw", "hunter2")
	storeConfig(ns, "c1", "app.conf", "k=v")
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"}, TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{
		Image:   "busybox",
		Secrets: []*swarm.SecretReference{{SecretName: "pw"}},
		Configs: []*swarm.ConfigReference{{ConfigName: "app.conf", File: &swarm.ConfigReferenceFileTarget{Name: "/etc/app.conf", Mode: 0o400}}},
	}}}
	orig := spec.TaskTemplate.ContainerSpec
	if err := attachSecretsConfigs(ns.s.View(), &spec); err != nil {
		t.Fatal(err)
	}
	cs := spec.TaskTemplate.ContainerSpec
	if orig.Secrets[0].SecretID != "" {
		t.Error("attachSecretsConfigs changed the caller's container spec")
	}
	if r := cs.Secrets[0]; r.SecretID != "s1" || r.File == nil || *r.File != (swarm.SecretReferenceFileTarget{Name: "pw", UID: "0", GID: "0", Mode: 0o444}) {
		t.Errorf("secret reference = %+v %+v", r, r.File)
	}
	if r := cs.Configs[0]; r.ConfigID != "c1" || *r.File != (swarm.ConfigReferenceFileTarget{Name: "/etc/app.conf", UID: "0", GID: "0", Mode: 0o400}) {
		t.Errorf("config reference = %+v %+v", r, r.File)
	}
	svc := &state.Service{}
	svc.ID, svc.Spec = "svc1", spec
	ns.apply(state.NewOp(state.TableServices, state.ActionCreate, svc, 0))
	v := ns.s.View()
	_, err := secretKind.checkRemove(v, "s1")
	wantErr(t, "secret in use", err, errdefs.KindInvalid, "secret 'pw' is in use by the following service: web")
	_, err = configKind.checkRemove(v, "c1")
	wantErr(t, "config in use", err, errdefs.KindInvalid, "config 'app.conf' is in use by the following service: web")
	storeSecret(ns, "s2", "free", "x")
	if _, err := secretKind.checkRemove(ns.s.View(), "s2"); err != nil {
		t.Errorf("unused secret: %v", err)
	}

	// Unknown references, a name that does not match the ID, clashing targets.
	for _, c := range []struct {
		cs   swarm.ContainerSpec
		text string
	}{
		{swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretName: "nope"}, {SecretName: "gone"}}}, "secrets not found: nope, gone"},
		{swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretID: "s1", SecretName: "other"}}}, "secret not found: other"},
		{swarm.ContainerSpec{Configs: []*swarm.ConfigReference{{ConfigName: "nope"}}}, "config not found: nope"},
		{swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretName: "pw"}, {SecretName: "free", File: &swarm.SecretReferenceFileTarget{Name: "pw"}}}}, "secret references 'pw' and 'free' have a conflicting target: 'pw'"},
		{swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretName: "pw", File: &swarm.SecretReferenceFileTarget{Name: "../x"}}}}, "may not contain '..'"},
	} {
		s := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &c.cs}}
		wantErr(t, c.text, attachSecretsConfigs(ns.s.View(), &s), errdefs.KindInvalid, c.text)
	}
}

func TestSecretDataNeverReturned(t *testing.T) {
	ns := newNetStore(t)
	storeSecret(ns, "s1", "pw", "hunter2")
	storeConfig(ns, "c1", "conf", "k=v")
	m := &Manager{store: ns.s}
	secs := m.Secrets()
	if len(secs) != 1 || secs[0].Spec.Data != nil || secs[0].Spec.Name != "pw" || secs[0].Spec.Labels == nil {
		t.Errorf("Secrets() = %+v; want pw without data", secs)
	}
	if ns.s.View().Secret("s1").Spec.Data == nil {
		t.Error("Secrets() stripped the stored secret's data")
	}
	if cfgs := m.Configs(); len(cfgs) != 1 || string(cfgs[0].Spec.Data) != "k=v" {
		t.Errorf("Configs() = %+v; want conf with its data", cfgs)
	}
}
