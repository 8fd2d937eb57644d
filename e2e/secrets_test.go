package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProcessServiceSecretAndConfig creates a secret and a config with
// the CLI and a process service on the worker that reads both: the task
// sees the config's text and the secret's bytes (it prints their hash,
// so the secret never reaches a log), no file under either node's
// directory (data dir, logs) holds the secret, the manager that runs no
// such task never got its file, removing the secret in use is refused,
// a rotation (--secret-rm, --secret-add under the same target) reaches
// the new task, and the task's files go with the service.
func TestProcessServiceSecretAndConfig(t *testing.T) {
	c := processCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	secret := fmt.Sprintf("s3cret-%d-bytes", os.Getpid())
	files := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m1.mustCLI(t, "secret", "create", "--label", "app=e2e", "s1", write("s1", secret))
	m1.mustCLI(t, "config", "create", "c1", write("c1", "listen-on-8080"))
	if out := m1.mustCLI(t, "secret", "inspect", "s1"); strings.Contains(out, secret) || strings.Contains(out, `"Data"`) {
		t.Errorf("secret inspect shows the data:\n%s", out)
	}
	if out := m1.mustCLI(t, "config", "inspect", "--format", "{{printf \"%s\" .Spec.Data}}", "c1"); strings.TrimSpace(out) != "listen-on-8080" {
		t.Errorf("config inspect data = %q", out)
	}
	if _, stderr, err := m1.CLI("service", "create", "-d", "--driver", "process", "--secret", "nope", "/bin/sleep", "1000"); err == nil || !strings.Contains(stderr, "secret not found: nope") {
		t.Errorf("a service with an unknown secret: %v %s", err, stderr)
	}

	sum := sha256.Sum256([]byte(secret))
	m1.mustService(t, "service", "create", "--name", "sc", "--driver", "process", "--constraint", "node.role==worker", "--update-monitor", "1s",
		"--secret", "s1", "--config", "c1",
		"/bin/sh", "-c", `echo "secret-sha $(sha256sum < $FLOTILLA_SECRETS_DIR/s1 | cut -d' ' -f1) mode $(stat -c %a $FLOTILLA_SECRETS_DIR/s1)"; echo "config $(cat $FLOTILLA_CONFIGS_DIR/c1)"; exec sleep 1000`)
	rows := m1.waitRunning(t, "sc", 1, serviceTimeout, nodeNames(w1))
	eventually(t, serviceTimeout, func() error {
		out := m1.mustCLI(t, "service", "logs", "sc")
		for _, want := range []string{"secret-sha " + hex.EncodeToString(sum[:]) + " mode 400", "config listen-on-8080"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("service logs sc has no %q:\n%s", want, out)
			}
		}
		return nil
	})

	_, stderr, err := m1.CLI("secret", "rm", "s1")
	if err == nil || !strings.Contains(stderr, "secret 's1' is in use by the following service: sc") {
		t.Errorf("secret rm of a secret in use: %v %s", err, stderr)
	}

	// Nowhere on disk: not in any file under the nodes' directories.
	for _, n := range []*node{m1, w1} {
		_ = filepath.WalkDir(n.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the secret in the clear", p)
			}
			return nil
		})
	}
	// In memory on the worker only, in the task's directory.
	shm := func(n *node) string { return filepath.Join("/dev/shm/flotilla", n.id) }
	taskID := rows[0].ID
	found := false
	_ = filepath.WalkDir(shm(w1), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			found = found || (bytes.Equal(b, []byte(secret)) && strings.Contains(p, "/"+taskID[:12]))
		}
		return nil
	})
	if !found {
		t.Errorf("the secret's file is not in the worker's memory-backed directory %s (task %s)", shm(w1), taskID)
	}
	if _, err := os.Stat(shm(m1)); err == nil {
		t.Errorf("the manager, which runs no task using the secret, has task files at %s", shm(m1))
	}

	// Rotation, as in Docker: a new secret under the old target.
	rotated := secret + "-v2"
	m1.mustCLI(t, "secret", "create", "s2", write("s2", rotated))
	m1.mustService(t, "service", "update", "--secret-rm", "s1", "--secret-add", "source=s2,target=s1", "sc")
	sum2 := sha256.Sum256([]byte(rotated))
	eventually(t, serviceTimeout, func() error {
		if out := m1.mustCLI(t, "service", "logs", "sc"); !strings.Contains(out, "secret-sha "+hex.EncodeToString(sum2[:])) {
			return fmt.Errorf("service logs sc has no line of the rotated secret:\n%s", out)
		}
		return nil
	})
	m1.mustCLI(t, "secret", "rm", "s1") // no longer in use

	m1.mustCLI(t, "service", "rm", "sc")
	eventually(t, serviceTimeout, func() error {
		entries, _ := os.ReadDir(shm(w1))
		if len(entries) > 0 {
			return fmt.Errorf("task files left in %s after service rm: %v", shm(w1), entries)
		}
		return nil
	})
	m1.mustCLI(t, "secret", "rm", "s2")
	m1.mustCLI(t, "config", "rm", "c1")
	t.Cleanup(func() { os.RemoveAll(shm(w1)) })
}
