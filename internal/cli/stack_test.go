package cli_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sampleCompose has two services, one declared network (the other
// service goes on the stack's default one), ports in both syntaxes, a
// health check (and a disabled one), deploy keys and the driver key.
const sampleCompose = `
services:
  front:
    image: ${FRONT_IMAGE:-sample-web}
    entrypoint: /bin/front
    command: ["serve", "--port", "8080"]
    environment:
      BACK_URL: http://back:9000
      GREETING: ${GREETING}
      UNSET:
    ports:
      - "8080:80"
      - target: 9090
        published: 9091
        mode: host
    networks:
      appnet:
        aliases: [www]
    healthcheck:
      test: ["CMD", "/bin/check"]
      interval: 5s
      timeout: 2s
      retries: 3
      start_period: 1s
    labels:
      tier: web
    x-flotilla-driver: process
    deploy:
      replicas: 2
      labels:
        owner: team-a
      placement:
        constraints: [node.role==worker]
        preferences:
          - spread: node.labels.zone
      resources:
        limits: {cpus: "0.5", memory: 64M}
        reservations: {cpus: "0.25", memory: 32M}
      update_config: {parallelism: 2, delay: 10s, order: start-first, failure_action: rollback}
      rollback_config: {monitor: 5s}
      restart_policy: {condition: on-failure, delay: 3s, max_attempts: 4}
  back:
    image: sample-back
    healthcheck:
      disable: true
    deploy:
      mode: global
      endpoint_mode: dnsrr
networks:
  appnet:
    labels: {purpose: app}
`

func wantFrontSpec(appnet string) swarm.ServiceSpec {
	var s swarm.ServiceSpec
	s.Name = "app_front"
	s.Labels = map[string]string{"owner": "team-a", "com.docker.stack.namespace": "app", "com.docker.stack.image": "sample-web"}
	s.TaskTemplate = swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{
			Image:   "sample-web:latest",
			Command: []string{"/bin/front"},
			Args:    []string{"serve", "--port", "8080"},
			Env:     []string{"BACK_URL=http://back:9000", "GREETING=hello", "UNSET"},
			Labels:  map[string]string{"tier": "web", "com.docker.stack.namespace": "app", "com.flotilla.driver": "process"},
			Healthcheck: &container.HealthConfig{
				Test: []string{"CMD", "/bin/check"}, Interval: 5 * time.Second, Timeout: 2 * time.Second, Retries: 3, StartPeriod: time.Second,
			},
		},
		Resources: &swarm.ResourceRequirements{
			Limits:       &swarm.Limit{NanoCPUs: 5e8, MemoryBytes: 64 << 20},
			Reservations: &swarm.Resources{NanoCPUs: 25e7, MemoryBytes: 32 << 20},
		},
		RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, Delay: ptr(3 * time.Second), MaxAttempts: ptr(uint64(4))},
		Placement: &swarm.Placement{
			Constraints: []string{"node.role==worker"},
			Preferences: []swarm.PlacementPreference{{Spread: &swarm.SpreadOver{SpreadDescriptor: "node.labels.zone"}}},
		},
		Networks: []swarm.NetworkAttachmentConfig{{Target: appnet, Aliases: []string{"www", "front"}}},
	}
	s.Mode.Replicated = &swarm.ReplicatedService{Replicas: ptr(uint64(2))}
	s.UpdateConfig = &swarm.UpdateConfig{Parallelism: 2, Delay: 10 * time.Second, Order: swarm.UpdateOrderStartFirst, FailureAction: swarm.UpdateFailureActionRollback}
	s.RollbackConfig = &swarm.UpdateConfig{Parallelism: 1, Monitor: 5 * time.Second}
	s.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: []swarm.PortConfig{
		{TargetPort: 80, PublishedPort: 8080, Protocol: "tcp", PublishMode: swarm.PortConfigPublishModeIngress},
		{TargetPort: 9090, PublishedPort: 9091, Protocol: "tcp", PublishMode: swarm.PortConfigPublishModeHost},
	}}
	return s
}

func wantBackSpec(defaultNet string) swarm.ServiceSpec {
	var s swarm.ServiceSpec
	s.Name = "app_back"
	s.Labels = map[string]string{"com.docker.stack.namespace": "app", "com.docker.stack.image": "sample-back"}
	s.TaskTemplate = swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{
			Image:       "sample-back:latest",
			Labels:      map[string]string{"com.docker.stack.namespace": "app"},
			Healthcheck: &container.HealthConfig{Test: []string{"NONE"}},
		},
		Networks: []swarm.NetworkAttachmentConfig{{Target: defaultNet, Aliases: []string{"back"}}},
	}
	s.Mode.Global = &swarm.GlobalService{}
	s.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}
	return s
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStackDeployConvertsTheComposeFile(t *testing.T) {
	t.Setenv("GREETING", "hello")
	c := newFakeCluster(t)
	file := writeFile(t, t.TempDir(), "compose.yml", sampleCompose)
	r := mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	wantOut := "Creating network app_appnet\nCreating network app_default\nCreating service app_back\nCreating service app_front\n"
	if r.stdout != wantOut {
		t.Errorf("stdout:\n%s\nwant:\n%s", r.stdout, wantOut)
	}
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
	creates := c.only("POST", "/networks/create")
	if len(creates) != 2 {
		t.Fatalf("network creates: %d", len(creates))
	}
	for _, req := range creates {
		body := decodeBody[struct {
			Name, Driver, Scope string
			Labels              map[string]string
		}](t, req)
		if body.Driver != "overlay" || body.Scope != "swarm" || body.Labels["com.docker.stack.namespace"] != "app" {
			t.Errorf("network create %s: %+v", body.Name, body)
		}
		if body.Name == "app_appnet" && body.Labels["purpose"] != "app" {
			t.Errorf("app_appnet lost its label: %+v", body.Labels)
		}
	}
	// The services are created with the networks' IDs.
	got := map[string]swarm.ServiceSpec{}
	for _, req := range c.only("POST", "/services/create") {
		s := decodeBody[swarm.ServiceSpec](t, req)
		got[s.Name] = s
	}
	want := map[string]swarm.ServiceSpec{
		"app_front": wantFrontSpec(c.networkID(t, "app_appnet")),
		"app_back":  wantBackSpec(c.networkID(t, "app_default")),
	}
	for name, w := range want {
		if g, ws := jsonOf(t, got[name]), jsonOf(t, w); g != ws {
			t.Errorf("%s spec:\n%s\nwant:\n%s", name, g, ws)
		}
	}
}

func TestStackDeployInterpolatesFromEnvAndDotEnv(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "compose.yml", `
services:
  web:
    image: ${IMAGE}
    environment:
      FROM_ENV: ${FROM_ENV}
      OVERRIDDEN: ${BOTH}
      MISSING: ${NOT_SET_ANYWHERE}
`)
	writeFile(t, dir, ".env", "IMAGE=from-dotenv\nBOTH=dotenv\n")
	t.Setenv("FROM_ENV", "env")
	t.Setenv("BOTH", "env-wins")
	c := newFakeCluster(t)
	r := mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	if want := `warning: The "NOT_SET_ANYWHERE" variable is not set. Defaulting to a blank string.`; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q lacks %q", r.stderr, want)
	}
	s := c.service(t, "app_web")
	cs := s.Spec.TaskTemplate.ContainerSpec
	if cs.Image != "from-dotenv:latest" || !reflect.DeepEqual(cs.Env, []string{"FROM_ENV=env", "MISSING=", "OVERRIDDEN=env-wins"}) {
		t.Errorf("image %q env %q", cs.Image, cs.Env)
	}
}

func TestStackDeployMergesFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	base := writeFile(t, dir, "base.yml", `
services:
  web:
    image: web:1
    environment: {A: "1", B: "1"}
    deploy: {replicas: 1}
`)
	override := writeFile(t, dir, "prod.yml", `
services:
  web:
    image: web:2
    environment: {B: "2"}
    deploy: {replicas: 3}
  worker:
    image: worker
`)
	c := newFakeCluster(t)
	mustRun(t, c.host, "stack", "deploy", "-c", base, "-c", override, "app")
	web := c.service(t, "app_web").Spec
	if web.TaskTemplate.ContainerSpec.Image != "web:2" || *web.Mode.Replicated.Replicas != 3 ||
		!reflect.DeepEqual(web.TaskTemplate.ContainerSpec.Env, []string{"A=1", "B=2"}) {
		t.Errorf("merged web: image %s replicas %d env %v", web.TaskTemplate.ContainerSpec.Image, *web.Mode.Replicated.Replicas, web.TaskTemplate.ContainerSpec.Env)
	}
	c.service(t, "app_worker")
}

func TestStackDeployRefusesAnInvalidFileBeforeAnyRequest(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"syntax": "services:\n  web:\n    image: [unclosed\n",
		"key":    "services:\n  web:\n    image: web\n    imagee: typo\n",
	} {
		f := newFakeAPI(t)
		file := writeFile(t, dir, name+".yml", content)
		r := run(t, f.host, "stack", "deploy", "-c", file, "app")
		if r.err == nil {
			t.Errorf("%s: deploy succeeded", name)
		}
		t.Logf("%s: %s", name, r.stderr)
		if name == "syntax" && !strings.Contains(r.stderr, "line") {
			t.Errorf("syntax error without its line: %s", r.stderr)
		}
		if name == "key" && !strings.Contains(r.stderr, "imagee") {
			t.Errorf("unknown key not named: %s", r.stderr)
		}
		noRequests(t, f, name)
	}
	f := newFakeAPI(t)
	good := writeFile(t, dir, "good.yml", "services:\n  web:\n    image: web\n")
	if r := run(t, f.host, "stack", "deploy", "-c", good, "MyApp"); r.err == nil || !strings.Contains(r.stderr, `invalid stack name "MyApp"`) {
		t.Errorf("an upper-case stack name: %v %s", r.err, r.stderr)
	}
	noRequests(t, f, "stack name")
}

func TestStackDeployWarnsOfUnsupportedKeys(t *testing.T) {
	file := writeFile(t, t.TempDir(), "compose.yml", `
services:
  web:
    image: web
    build: .
    privileged: true
    cap_add: [NET_ADMIN]
    volumes: ["data:/data"]
    deploy:
      resources:
        limits: {pids: 10}
volumes:
  data: {}
x-anchors: {}
`)
	c := newFakeCluster(t)
	r := mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	for _, want := range []string{
		"service web: ignoring keys flotilla does not support yet: build, cap_add, privileged",
		"service web deploy.resources.limits: ignoring keys flotilla does not support yet: pids",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	c.service(t, "app_web")
}

func TestStackRedeploy(t *testing.T) {
	dir := t.TempDir()
	v1 := `
services:
  web:
    image: web:1
    ports: ["8080:80"]
    networks: [front]
  api:
    image: api:1
    networks: [front]
  old:
    image: old
networks:
  front: {}
`
	file := writeFile(t, dir, "compose.yml", v1)
	c := newFakeCluster(t)
	mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	before := len(c.requests())

	// The same file again: nothing is created or updated.
	r := mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	for _, req := range c.requests()[before:] {
		if req.Method != "GET" {
			t.Errorf("unchanged redeploy sent %s %s", req.Method, req.Path)
		}
	}
	if !strings.Contains(r.stdout, "Service app_web is up to date") {
		t.Errorf("stdout: %s", r.stdout)
	}

	// web changes, old is dropped: web is updated at its version, api
	// is left alone, old stays without --prune.
	webBefore := c.service(t, "app_web")
	writeFile(t, dir, "compose.yml", strings.Replace(strings.Replace(v1, "web:1", "web:2", 1), "  old:\n    image: old\n", "", 1))
	before = len(c.requests())
	mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	var changed []string
	for _, req := range c.requests()[before:] {
		if req.Method != "GET" {
			changed = append(changed, req.Method+" "+req.Path+"?"+req.Query.Encode())
		}
	}
	want := []string{"POST /services/" + webBefore.ID + "/update?version=10"}
	if !reflect.DeepEqual(changed, want) {
		t.Errorf("changed redeploy sent %v, want %v", changed, want)
	}
	if img := c.service(t, "app_web").Spec.TaskTemplate.ContainerSpec.Image; img != "web:2" {
		t.Errorf("web image %s", img)
	}
	c.service(t, "app_old")

	// --prune removes the dropped service.
	old := c.service(t, "app_old")
	r = mustRun(t, c.host, "stack", "deploy", "--prune", "-c", file, "app")
	if len(c.only("DELETE", "/services/"+old.ID)) != 1 || !strings.Contains(r.stdout, "Removing service app_old") {
		t.Errorf("--prune did not remove app_old: %s", r.stdout)
	}
	if s, _ := c.counts(); s != 2 {
		t.Errorf("%d services left, want 2", s)
	}
}

func TestStackDeployNeedsExternalNetworks(t *testing.T) {
	file := writeFile(t, t.TempDir(), "compose.yml", `
services:
  web:
    image: web
    networks: [shared]
networks:
  shared:
    external: true
`)
	c := newFakeCluster(t)
	r := run(t, c.host, "stack", "deploy", "-c", file, "app")
	if r.err == nil || !strings.Contains(r.stderr, `network "shared" is declared as external, but could not be found`) {
		t.Errorf("err %v stderr %s", r.err, r.stderr)
	}
	if s, n := c.counts(); s != 0 || n != 0 {
		t.Errorf("created %d services, %d networks", s, n)
	}
	id := c.addNetwork("shared", "overlay", nil)
	mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	if nets := c.service(t, "app_web").Spec.TaskTemplate.Networks; len(nets) != 1 || nets[0].Target != id {
		t.Errorf("networks %+v", nets)
	}
}

func TestStackLsServicesPsRm(t *testing.T) {
	c := newFakeCluster(t)
	file := writeFile(t, t.TempDir(), "compose.yml", sampleCompose)
	mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	other := writeFile(t, t.TempDir(), "compose.yml", "services:\n  one:\n    image: one\n")
	mustRun(t, c.host, "stack", "deploy", "-c", other, "zz")
	c.reply("GET /tasks", 200, []swarm.Task{})
	c.reply("GET /nodes", 200, []swarm.Node{})

	r := mustRun(t, c.host, "stack", "ls")
	if want := "NAME      SERVICES\napp       2\nzz        1\n"; r.stdout != want {
		t.Errorf("stack ls:\n%q\nwant:\n%q", r.stdout, want)
	}
	r = mustRun(t, c.host, "stack", "services", "--format", "{{.Name}}", "app")
	if r.stdout != "app_back\napp_front\n" {
		t.Errorf("stack services: %q", r.stdout)
	}
	mustRun(t, c.host, "stack", "ps", "app")
	if f := c.only("GET", "/tasks"); len(f) == 0 || !strings.Contains(f[len(f)-1].Query.Get("filters"), c.service(t, "app_front").ID) {
		t.Errorf("stack ps did not ask for the stack's tasks: %+v", f)
	}
	if r := run(t, c.host, "stack", "ps", "nope"); r.err == nil || !strings.Contains(r.stderr, "nothing found in stack: nope") {
		t.Errorf("ps of an unknown stack: %v %s", r.err, r.stderr)
	}

	r = mustRun(t, c.host, "stack", "rm", "app")
	want := "Removing service app_back\nRemoving service app_front\nRemoving network app_appnet\nRemoving network app_default\n"
	if r.stdout != want {
		t.Errorf("stack rm:\n%s\nwant:\n%s", r.stdout, want)
	}
	if s, n := c.counts(); s != 1 || n != 1 {
		t.Errorf("left %d services, %d networks; want zz's", s, n)
	}
}

// The managers refuse a network while the tasks of the services just
// removed still hold it: stack rm waits for them.
func TestStackRmWaitsForTasksToLeaveTheNetworks(t *testing.T) {
	c := newFakeCluster(t)
	file := writeFile(t, t.TempDir(), "compose.yml", "services:\n  one:\n    image: one\n")
	mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	id := c.networkID(t, "app_default")
	refusals := 2
	c.handle("DELETE /networks/"+id, func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if refusals > 0 {
			refusals--
			writeAPIError(w, http.StatusBadRequest, "network app_default is in use by task x; wait until the task has ended")
			return
		}
		delete(c.networks, id)
		w.WriteHeader(http.StatusNoContent)
	})
	mustRun(t, c.host, "stack", "rm", "app")
	if s, n := c.counts(); s != 0 || n != 0 {
		t.Errorf("left %d services, %d networks", s, n)
	}
	if got := len(c.only("DELETE", "/networks/"+id)); got != 3 {
		t.Errorf("%d network removals, want 3", got)
	}
}

func TestStackDeployConvertsVolumesToMounts(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "compose.yml", `
services:
  db:
    image: db
    volumes:
      - data:/var/lib/db
      - ./conf:/etc/db:ro
      - shared:/shared
      - /cache
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 1M}
volumes:
  data:
    driver: local
    driver_opts: {type: none}
    labels: {backup: daily}
  shared:
    external: true
`)
	c := newFakeCluster(t)
	mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	got := c.service(t, "app_db").Spec.TaskTemplate.ContainerSpec.Mounts
	want := []mount.Mount{
		{Type: mount.TypeVolume, Source: "app_data", Target: "/var/lib/db", VolumeOptions: &mount.VolumeOptions{
			Labels:       map[string]string{"backup": "daily", "com.docker.stack.namespace": "app"},
			DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "none"}},
		}},
		{Type: mount.TypeBind, Source: filepath.Join(dir, "conf"), Target: "/etc/db", ReadOnly: true},
		{Type: mount.TypeVolume, Source: "shared", Target: "/shared"},
		{Type: mount.TypeVolume, Target: "/cache"},
		{Type: mount.TypeTmpfs, Target: "/tmp", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20}},
	}
	if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
		t.Errorf("mounts:\n%s\nwant:\n%s", g, w)
	}

	bad := writeFile(t, dir, "bad.yml", "services:\n  db:\n    image: db\n    volumes: [\"nope:/x\"]\n")
	f := newFakeAPI(t)
	if r := run(t, f.host, "stack", "deploy", "-c", bad, "app"); r.err == nil {
		t.Errorf("an undeclared volume was accepted")
	} else {
		t.Logf("undeclared volume: %s", r.stderr)
	}
	noRequests(t, f, "undeclared volume")
}

func TestStackDeploySecretsAndConfigs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pw.txt", "s3cret")
	file := writeFile(t, dir, "compose.yml", `
services:
  back:
    image: back
    secrets:
      - pw
      - source: shared
        target: /etc/shared.pem
        uid: "100"
        mode: 0400
      - token
    configs:
      - conf
secrets:
  pw:
    file: ./pw.txt
  shared:
    external: true
  token:
    environment: TOKEN
configs:
  conf:
    content: "port: 80"
`)
	writeFile(t, dir, ".env", "TOKEN=from-dotenv\n")
	c := newFakeCluster(t)
	r := run(t, c.host, "stack", "deploy", "-c", file, "app")
	if r.err == nil || !strings.Contains(r.stderr, `secret "shared" is declared as external, but could not be found`) {
		t.Errorf("missing external secret: %v %s", r.err, r.stderr)
	}
	if s, n := c.counts(); s != 0 || n != 0 || len(c.blobs["secrets"]) != 0 {
		t.Errorf("created objects before refusing")
	}
	shared := &fakeBlob{}
	shared.Spec.Name = "shared"
	sharedID := c.addBlob("secrets", shared)

	r = mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	pw, conf := c.blob(t, "secrets", "app_pw"), c.blob(t, "configs", "app_conf")
	token := c.blob(t, "secrets", "app_token")
	if string(token.Spec.Data) != "from-dotenv" {
		t.Errorf("secret from the environment: %q", token.Spec.Data)
	}
	if string(pw.Spec.Data) != "s3cret" || pw.Spec.Labels["com.docker.stack.namespace"] != "app" || string(conf.Spec.Data) != "port: 80" {
		t.Errorf("secret %+v config %+v", pw.Spec, conf.Spec)
	}
	cs := c.service(t, "app_back").Spec.TaskTemplate.ContainerSpec
	wantSecrets := []*swarm.SecretReference{
		{SecretID: pw.ID, SecretName: "app_pw", File: &swarm.SecretReferenceFileTarget{Name: "/run/secrets/pw", UID: "0", GID: "0", Mode: 0o444}},
		{SecretID: token.ID, SecretName: "app_token", File: &swarm.SecretReferenceFileTarget{Name: "/run/secrets/token", UID: "0", GID: "0", Mode: 0o444}},
		{SecretID: sharedID, SecretName: "shared", File: &swarm.SecretReferenceFileTarget{Name: "/etc/shared.pem", UID: "100", GID: "0", Mode: 0o400}},
	}
	wantConfigs := []*swarm.ConfigReference{
		{ConfigID: conf.ID, ConfigName: "app_conf", File: &swarm.ConfigReferenceFileTarget{Name: "/conf", UID: "0", GID: "0", Mode: 0o444}},
	}
	if g, w := jsonOf(t, cs.Secrets), jsonOf(t, wantSecrets); g != w {
		t.Errorf("secrets:\n%s\nwant:\n%s", g, w)
	}
	if g, w := jsonOf(t, cs.Configs), jsonOf(t, wantConfigs); g != w {
		t.Errorf("configs:\n%s\nwant:\n%s", g, w)
	}

	// Again: the service is not updated; changed secret data is refused
	// by the managers (immutable), and the service is left as it was.
	r = mustRun(t, c.host, "stack", "deploy", "-c", file, "app")
	if !strings.Contains(r.stdout, "Service app_back is up to date") {
		t.Errorf("redeploy: %s", r.stdout)
	}
	writeFile(t, dir, "pw.txt", "changed")
	if r := run(t, c.host, "stack", "deploy", "-c", file, "app"); r.err == nil || !strings.Contains(r.stderr, "only updates to Labels are allowed") {
		t.Errorf("changed secret data: %v %s", r.err, r.stderr)
	}

	r = mustRun(t, c.host, "stack", "rm", "app")
	if want := "Removing service app_back\nRemoving secret app_pw\nRemoving secret app_token\nRemoving config app_conf\nRemoving network app_default\n"; r.stdout != want {
		t.Errorf("stack rm:\n%s\nwant:\n%s", r.stdout, want)
	}
	if len(c.blobs["secrets"]) != 1 || len(c.blobs["configs"]) != 0 {
		t.Errorf("left %d secrets (want the external one), %d configs", len(c.blobs["secrets"]), len(c.blobs["configs"]))
	}
}
