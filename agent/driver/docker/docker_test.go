package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/agent/driver"
	"github.com/flotilla-org/flotilla/agent/driver/docker"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/imageimport"
)

// These tests run against the real engine at the standard socket (or
// FLOTILLA_TEST_DOCKER_HOST), never DOCKER_HOST. They build their own image
// from a static Go binary and remove every container and the image they
// made.

const testLabel = "com.flotilla.test"

var (
	host       string
	skipReason string
	image      string // flotilla-test/driver:<random>
	// healthImage is image with a HEALTHCHECK of its own.
	healthImage string
	runID       = randHex(6)
)

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestMain(m *testing.M) {
	host = os.Getenv("FLOTILLA_TEST_DOCKER_HOST")
	if host == "" {
		host = docker.DefaultHost
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	d, err := docker.New(docker.Options{Host: host})
	if err == nil {
		err = d.Available(ctx)
	}
	if err != nil {
		skipReason = fmt.Sprintf("no Docker Engine reachable at %s: %v", host, err)
		fmt.Fprintln(os.Stderr, "docker driver tests skipped:", skipReason)
		cancel()
		os.Exit(m.Run())
	}
	image = "flotilla-test/driver:" + randHex(6)
	healthImage = image + "-health"
	t0 := time.Now()
	if err := buildImage(ctx, d.Client(), image, healthImage); err != nil {
		fmt.Fprintln(os.Stderr, "build test image:", err)
		cancel()
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "docker driver tests: engine %s, image %s built in %v\n", host, image, time.Since(t0).Round(time.Millisecond))
	code := m.Run()
	for _, ref := range []string{image, healthImage} {
		if _, err := d.Client().ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			fmt.Fprintln(os.Stderr, "remove test image:", err)
		}
	}
	cancel()
	os.Exit(code)
}

// buildImage compiles testdata/testapp statically and imports it as image
// ref with /app as entrypoint, and as healthRef with a HEALTHCHECK too.
func buildImage(ctx context.Context, c *client.Client, ref, healthRef string) error {
	dir, err := os.MkdirTemp("", "flotilla-docker-test")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "app")
	// go test puts its own GOROOT/bin first on the PATH of the tests it runs.
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags=-s -w", "-o", bin, "./testdata/testapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	if err := imageimport.Binary(ctx, c, bin, ref, "app"); err != nil {
		return err
	}
	return imageimport.Binary(ctx, c, bin, healthRef, "app", `HEALTHCHECK --interval=100ms --retries=2 CMD ["/app", "healthcheck"]`)
}

// newDriver returns a driver whose containers carry a label unique to this
// test, and removes them all when the test ends.
func newDriver(t *testing.T) *docker.Driver {
	t.Helper()
	return newDriverOpts(t, "", docker.Options{})
}

// newDriverOpts is newDriver with options (Host and Labels are set here).
// A test's first driver has suffix "" (and makes the test parallel); its
// others, with other suffixes, get other labels. The containers and
// engine networks carrying the label are removed when the test ends.
func newDriverOpts(t *testing.T, suffix string, opts docker.Options) *docker.Driver {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if suffix == "" && t.Name() != "TestAvailableAndVersionNegotiation" { // that one uses t.Setenv
		t.Parallel()
	}
	value := runID + "-" + t.Name() + suffix
	opts.Host, opts.Labels = host, map[string]string{testLabel: value}
	d, err := docker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := client.Filters{}.Add("label", docker.LabelManaged+"=true", testLabel+"="+value)
		res, err := d.Client().ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Errorf("cleanup: list: %v", err)
		}
		for _, c := range res.Items {
			if _, err := d.Client().ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Errorf("cleanup: remove %s: %v", c.ID, err)
			}
		}
		nets, err := d.Client().NetworkList(ctx, client.NetworkListOptions{Filters: f})
		if err != nil {
			t.Errorf("cleanup: list networks: %v", err)
		}
		for _, n := range nets.Items {
			if _, err := d.Client().NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
				t.Errorf("cleanup: remove network %s: %v", n.Name, err)
			}
		}
		d.Close()
	})
	return d
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func spec(t *testing.T, env ...string) driver.Spec {
	return driver.Spec{TaskID: randHex(8), ServiceID: "svc-id-1", ServiceName: "web", NodeID: "node-1", Slot: 2,
		Image: image, Env: env, Labels: map[string]string{"user.label": "x"}, StopGracePeriod: 5 * time.Second}
}

func collect(t *testing.T, d driver.Driver, h driver.Handle, opts driver.LogOptions) []driver.LogMessage {
	t.Helper()
	ch := make(chan driver.LogMessage)
	errc := make(chan error, 1)
	go func() { errc <- d.Logs(ctxT(t, time.Minute), h, opts, ch); close(ch) }()
	var got []driver.LogMessage
	for m := range ch {
		got = append(got, m)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Logs: %v", err)
	}
	return got
}

func text(msgs []driver.LogMessage) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%d:%s\n", m.Stream, m.Line)
	}
	return b.String()
}

// waitForLine follows the logs until want shows up.
func waitForLine(t *testing.T, d driver.Driver, h driver.Handle, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := make(chan driver.LogMessage)
	go func() { _ = d.Logs(ctx, h, driver.LogOptions{Follow: true, Tail: -1}, ch) }()
	for {
		select {
		case m := <-ch:
			if strings.Contains(string(m.Line), want) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("task never printed %q", want)
		}
	}
}

func TestAvailableAndVersionNegotiation(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, 30*time.Second)
	// DOCKER_HOST points elsewhere in flotilla's tests: it must not matter.
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	d2, err := docker.New(docker.Options{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if err := d2.Available(ctx); err != nil {
		t.Fatalf("Available with DOCKER_HOST set elsewhere: %v", err)
	}
	ping, err := d.Client().Ping(ctx, client.PingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d2.APIVersion(); got != ping.APIVersion && ping.APIVersion < client.MaxAPIVersion {
		t.Errorf("negotiated API %s, engine speaks %s", got, ping.APIVersion)
	}
	t.Logf("engine API %s, negotiated %s", ping.APIVersion, d2.APIVersion())

	bad, err := docker.New(docker.Options{Host: "unix:///nonexistent/docker.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Available(ctx); !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Errorf("Available on a missing socket: %v", err)
	}
}

func TestStartLogsExitCode(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	s := spec(t, "EXIT_CODE=3", "FOO=bar")
	s.Args = []string{"a", "b"}
	s.Hostname = "taskhost"
	s.Dir = "/tmp"
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if h.Driver != "docker" || h.ID == "" || h.StartedAt.IsZero() || h.Extra["name"] != "web.2."+s.TaskID {
		t.Fatalf("handle %+v", h)
	}
	st, err := d.Wait(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if st.ExitCode != 3 || st.Err != "exit status 3" || st.OOMKilled || st.FinishedAt.IsZero() {
		t.Fatalf("status %+v", st)
	}
	got := collect(t, d, h, driver.LogOptions{Tail: -1})
	all := text(got)
	for _, want := range []string{"1:hello from testapp a b (host taskhost, FOO=bar, pwd /tmp)\n", "2:to stderr\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("logs lack %q:\n%s", want, all)
		}
	}
	for _, m := range got {
		if m.Time.IsZero() || time.Since(m.Time) > time.Hour {
			t.Errorf("log time %v", m.Time)
		}
	}
	if tail := collect(t, d, h, driver.LogOptions{Tail: 0}); len(tail) != 0 {
		t.Errorf("tail 0: %s", text(tail))
	}
	if later := collect(t, d, h, driver.LogOptions{Tail: -1, Since: time.Now().Add(time.Hour)}); len(later) != 0 {
		t.Errorf("since the future: %s", text(later))
	}

	ins, err := d.Client().ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Container.Name != "/web.2."+s.TaskID {
		t.Errorf("container name %s", ins.Container.Name)
	}
	for k, v := range map[string]string{
		docker.LabelTaskID: s.TaskID, docker.LabelServiceID: "svc-id-1", docker.LabelServiceName: "web",
		docker.LabelNodeID: "node-1", docker.LabelTaskName: "web.2." + s.TaskID, docker.LabelManaged: "true",
		"user.label": "x",
	} {
		if got := ins.Container.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Recover(ctx, h); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Recover after Remove: %v", err)
	}
	if _, err := d.Wait(ctx, h); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("Wait after Remove: %v", err)
	}
	if err := d.Remove(ctx, h); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := d.Stop(ctx, h, time.Second); err != nil {
		t.Errorf("Stop after Remove: %v", err)
	}
}

func TestFollowLogs(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	h, err := d.Start(ctx, spec(t, "TICKS=5"))
	if err != nil {
		t.Fatal(err)
	}
	got := text(collect(t, d, h, driver.LogOptions{Follow: true, Tail: -1}))
	for i := 1; i <= 5; i++ {
		if !strings.Contains(got, fmt.Sprintf("1:tick %d\n", i)) {
			t.Errorf("follow lacks tick %d:\n%s", i, got)
		}
	}
	if st, err := d.Wait(ctx, h); err != nil || st.ExitCode != 0 || st.Failed() {
		t.Fatalf("status %+v %v", st, err)
	}
	if tail := collect(t, d, h, driver.LogOptions{Follow: true, Tail: 1}); text(tail) != "1:tick 5\n" {
		t.Errorf("tail 1: %q", text(tail))
	}
}

func TestStopGraceful(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	h, err := d.Start(ctx, spec(t))
	if err != nil {
		t.Fatal(err)
	}
	if running, _, err := d.Recover(ctx, h); !running || err != nil {
		t.Fatalf("Recover: %v %v", running, err)
	}
	waitForLine(t, d, h, "ready")
	if err := d.Stop(ctx, h, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := d.Wait(ctx, h)
	if err != nil || st.ExitCode != 0 {
		t.Fatalf("status %+v %v", st, err)
	}
	if !strings.Contains(text(collect(t, d, h, driver.LogOptions{Tail: -1})), "1:got SIGTERM\n") {
		t.Error("no SIGTERM seen")
	}
	if err := d.Stop(ctx, h, time.Second); err != nil {
		t.Errorf("Stop of a stopped task: %v", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	h, err := d.Start(ctx, spec(t, "IGNORE_TERM=1"))
	if err != nil {
		t.Fatal(err)
	}
	waitForLine(t, d, h, "ready")
	t0 := time.Now()
	if err := d.Stop(ctx, h, time.Second); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < time.Second {
		t.Errorf("stopped after %v, before the grace period", el)
	}
	st, err := d.Wait(ctx, h)
	if err != nil || st.ExitCode != 137 {
		t.Fatalf("status %+v %v", st, err)
	}
	// Kill at once.
	h, err = d.Start(ctx, spec(t, "IGNORE_TERM=1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, h, -1); err != nil {
		t.Fatal(err)
	}
	if running, st, err := d.Recover(ctx, h); running || err != nil || st.ExitCode != 137 {
		t.Fatalf("after kill: %v %+v %v", running, st, err)
	}
}

// An agent restart: a new driver value takes over from the saved handle.
func TestRecoverAfterAgentRestart(t *testing.T) {
	d1 := newDriver(t)
	ctx := ctxT(t, time.Minute)
	s := spec(t)
	h, err := d1.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	saved, _ := json.Marshal(h)
	d1.Close()

	d2, err := docker.New(docker.Options{Host: host}) // the "restarted agent"
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	var h2 driver.Handle
	if err := json.Unmarshal(saved, &h2); err != nil {
		t.Fatal(err)
	}
	running, _, err := d2.Recover(ctx, h2)
	if err != nil || !running {
		t.Fatalf("Recover: %v %v", running, err)
	}
	list, err := d2.List(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range list {
		found = found || (l.TaskID == s.TaskID && l.Handle.ID == h.ID && l.Running)
	}
	if !found {
		t.Errorf("List does not show the task: %+v", list)
	}
	waitForLine(t, d2, h2, "ready")
	waited := make(chan driver.ExitStatus, 1)
	go func() {
		st, err := d2.Wait(ctx, h2)
		if err != nil {
			t.Error(err)
		}
		waited <- st
	}()
	if err := d2.Stop(ctx, h2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if st := <-waited; st.ExitCode != 0 {
		t.Errorf("status %+v", st)
	}
	if running, st, err := d2.Recover(ctx, h2); running || err != nil || st.FinishedAt.IsZero() {
		t.Errorf("Recover of an exited task: %v %+v %v", running, st, err)
	}
	if err := d2.Remove(ctx, h2); err != nil {
		t.Fatal(err)
	}
}

func TestMissingImageAndBadSpecs(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	s := spec(t)
	s.Image = "flotilla-test/no-such-image:" + randHex(4)
	_, err := d.Start(ctx, s)
	if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "is not present on this node") {
		t.Errorf("missing image: %v", err)
	}
	s = spec(t)
	s.Command = []string{"/no/such/binary"}
	if _, err := d.Start(ctx, s); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("missing entrypoint: %v (kind %v)", err, errdefs.KindOf(err))
	} else {
		t.Logf("missing entrypoint: %v", err)
	}
	s = spec(t)
	s.Image = ""
	s.Command = []string{"/app"}
	if _, err := d.Start(ctx, s); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("no image: %v", err)
	}
	// Failed starts leave no container behind.
	if list, _ := d.List(ctx, ""); len(list) != 0 {
		t.Errorf("containers left: %+v", list)
	}
}

func TestConflict(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	s := spec(t)
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, s); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("second start: %v", err)
	}
	if err := d.Remove(ctx, h); err != nil { // running: killed and removed
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	s := spec(t)
	s.NanoCPUs = 500_000_000
	s.MemoryBytes = 64 << 20
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := d.Client().ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := ins.Container.HostConfig.Resources; r.NanoCPUs != 500_000_000 || r.Memory != 64<<20 {
		t.Errorf("resources NanoCPUs=%d Memory=%d", r.NanoCPUs, r.Memory)
	}
	if p := ins.Container.HostConfig.RestartPolicy; p.Name != container.RestartPolicyDisabled {
		t.Errorf("restart policy %q", p.Name)
	}
	if err := d.Stop(ctx, h, -1); err != nil {
		t.Fatal(err)
	}
}

// A handle that points at a container flotilla did not make is refused.
func TestLeavesForeignContainersAlone(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	c, err := d.Client().ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:   "flotilla-test-foreign-" + randHex(4),
		Config: &container.Config{Image: image, Labels: map[string]string{testLabel: "foreign"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = d.Client().ContainerRemove(context.Background(), c.ID, client.ContainerRemoveOptions{Force: true})
	})
	h := driver.Handle{Driver: "docker", ID: c.ID}
	if err := d.Remove(ctx, h); !errdefs.Is(err, errdefs.KindForbidden) {
		t.Errorf("Remove: %v", err)
	}
	if err := d.Stop(ctx, h, 0); !errdefs.Is(err, errdefs.KindForbidden) {
		t.Errorf("Stop: %v", err)
	}
	if _, err := d.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("foreign container gone: %v", err)
	}
}

// Secret and config files are bind-mounted read-only at their targets.
func TestFilesMountedReadOnly(t *testing.T) {
	d := newDriver(t)
	ctx := ctxT(t, time.Minute)
	dir := t.TempDir()
	src := filepath.Join(dir, "pw")
	if err := os.WriteFile(src, []byte("s3cret"), 0o444); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(cfg, []byte("listen 80"), 0o444); err != nil {
		t.Fatal(err)
	}
	s := spec(t, "CAT=/run/secrets/pw,/etc/app.conf", "EXIT_CODE=0")
	s.Files = []driver.File{{Source: src, Target: "/run/secrets/pw"}, {Source: cfg, Target: "/etc/app.conf"}}
	h, err := d.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Remove(context.Background(), h) })
	if _, err := d.Wait(ctx, h); err != nil {
		t.Fatal(err)
	}
	all := text(collect(t, d, h, driver.LogOptions{Tail: -1}))
	for _, want := range []string{"cat /run/secrets/pw: s3cret", "cat /etc/app.conf: listen 80"} {
		if !strings.Contains(all, want) {
			t.Errorf("logs lack %q:\n%s", want, all)
		}
	}
	insp, err := d.Client().ContainerInspect(ctx, h.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ms := insp.Container.Mounts; len(ms) != 2 || ms[0].RW || ms[1].RW {
		t.Errorf("mounts %+v, want 2 read-only", ms)
	}
}
