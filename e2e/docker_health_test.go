package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/flotilla-org/flotilla/internal/imageimport"
)

// engineOrSkip returns a client of this machine's engine, or skips the
// test when none answers.
func engineOrSkip(t *testing.T) *client.Client {
	t.Helper()
	api, err := client.New(client.WithHost(engineHost))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		reason := fmt.Sprintf("no Docker Engine answers at %s: %v", engineHost, err)
		fmt.Fprintln(os.Stderr, t.Name()+" skipped:", reason)
		t.Skip(reason)
	}
	return api
}

// removeContainersAtEnd removes, when the test ends, the containers that
// match f (those its daemons made and left).
func removeContainersAtEnd(t *testing.T, api *client.Client, f client.Filters) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Errorf("cleanup: listing containers: %v", err)
			return
		}
		for _, ct := range res.Items {
			_, err := api.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true})
			// Not found or "removal ... is already in progress": a daemon
			// killed by the cleanup had asked the engine to remove it.
			if err != nil && !cerrdefs.IsNotFound(err) && !(cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress")) {
				t.Errorf("cleanup: removing container %s: %v", ct.ID, err)
			}
		}
		// Wait for removals under way, so that the bridges they were
		// attached to can go next.
		if err := poll(30*time.Second, func() error {
			res, err := api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
			if err == nil && len(res.Items) > 0 {
				err = fmt.Errorf("%d containers still there", len(res.Items))
			}
			return err
		}); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// TestDockerHealthCheck runs a docker-driver service whose image has its
// own HEALTHCHECK: its task runs once healthy; an update to an image
// whose check never passes is rolled back, the failed task showing
// Docker's "unhealthy container" in both CLIs; --no-healthcheck turns the
// image's check off.
func TestDockerHealthCheck(t *testing.T) {
	requireE2E(t)
	api := engineOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	runID := randHex(6)
	good, bad := "flotilla-e2e/health:"+runID, "flotilla-e2e/health:"+runID+"-bad"
	const runLabel = "com.flotilla.e2e"
	bin := buildE2EApp(ctx, t)
	// Cleanups run last-registered first: the daemons go, then their
	// containers, then the images.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, ref := range []string{good, bad} {
			if _, err := api.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
				t.Errorf("removing image %s: %v", ref, err)
			}
		}
	})
	check := `HEALTHCHECK --interval=200ms --retries=2 CMD ["/app", "healthcheck"]`
	if err := imageimport.Binary(ctx, api, bin, good, "app", check); err != nil {
		t.Fatal(err)
	}
	if err := imageimport.Binary(ctx, api, bin, bad, "app", check, "ENV APP_HEALTHY=no"); err != nil {
		t.Fatal(err)
	}
	removeContainersAtEnd(t, api, client.Filters{}.Add("label", "com.flotilla.managed=true", runLabel+"="+runID))

	c := newCluster(t, 1, 1) // the nodes offer the docker driver
	m1 := c.managers[0]
	r := m1.mustService(t, "service", "create", "--name", "dh", "--driver", "docker",
		"--container-label", runLabel+"="+runID, "--update-monitor", "1s", good)
	t.Logf("service create (image with a HEALTHCHECK) converged in %s", r.elapsed.Round(time.Millisecond))
	first := m1.waitRunning(t, "dh", 1, convergeTimeout, nil)[0]
	if !strings.HasPrefix(first.Current, "Running (healthy)") {
		t.Errorf("service ps shows %q, want Running (healthy)", first.Current)
	}

	fr := m1.cliTimeout(serviceTimeout, "service", "update", "--image", bad,
		"--update-failure-action", "rollback", "--rollback-monitor", "1s", "dh")
	t.Logf("update to a never-healthy image: exit error after %s: %v\nstdout:\n%s", fr.elapsed.Round(time.Millisecond), fr.err, fr.stdout)
	if fr.err == nil || !containsAny(fr.stderr, "rolled back") {
		t.Fatalf("an update to an image that never turns healthy: err %v, stderr %q; want it rolled back", fr.err, fr.stderr)
	}
	if img := strings.TrimSpace(m1.mustCLI(t, "service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", "dh")); img != good {
		t.Errorf("after the rollback the service's image is %s, want %s", img, good)
	}
	m1.waitRunning(t, "dh", 1, convergeTimeout, nil)
	all, err := m1.servicePs("dh")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(all, func(r psRow) bool {
		return strings.HasPrefix(r.Current, "Failed (unhealthy)") && strings.Contains(r.Error, "unhealthy container")
	}) {
		t.Errorf("no task of the never-healthy image failed as unhealthy: %v", all)
	}

	// The unmodified docker CLI shows what Docker would: states and the error.
	if dockerBin, err := exec.LookPath("docker"); err == nil {
		env := cleanEnv([]string{"DOCKER_HOST=" + m1.host(), "DOCKER_CONFIG=" + tempDir(t)})
		out := run(cliTimeout, env, dockerBin, "service", "ps", "--no-trunc", "dh")
		if out.err != nil || !strings.Contains(out.stdout, " Running ") || !strings.Contains(out.stdout, "unhealthy container") {
			t.Errorf("docker service ps dh (err %v):\n%s\nwant a Running task and a failed one with Docker's \"unhealthy container\"", out.err, out.stdout)
		}
	}

	// --no-healthcheck: the same never-healthy image now runs.
	m1.mustService(t, "service", "update", "--image", bad, "--no-healthcheck", "dh")
	rows := m1.waitRunning(t, "dh", 1, convergeTimeout, nil)
	if strings.Contains(rows[0].Current, "healthy") {
		t.Errorf("with --no-healthcheck, service ps shows %q, want no health", rows[0].Current)
	}
}
