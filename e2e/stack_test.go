package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStackDeployProcess deploys a two-service stack from a compose file
// with `flotilla stack deploy` on the process driver: the front answers
// on its published port with what it got from the back end by its short
// name, the back end gets a secret and a config; a redeploy of the same
// file changes nothing, of a changed one only the changed service,
// --prune removes the dropped one; `stack rm` leaves no service,
// network, secret, config or listener behind.
func TestStackDeployProcess(t *testing.T) {
	c := newCluster(t, 1, 0)
	m1 := c.managers[0]
	port := freePort(t)
	compose := fmt.Sprintf(`
services:
  front:
    image: %[1]s
    command: ["sample-web", "--backend", "back:80"]
    x-flotilla-driver: process
    ports: ["%[2]d:80"]
    networks: [app]
  back:
    image: %[1]s
    command: ["sample-web"]
    x-flotilla-driver: process
    networks: [app]
    secrets: [pw]
    configs: [conf]
networks:
  app: {}
secrets:
  pw:
    file: ./pw.txt
configs:
  conf:
    content: "greeting: hello"
`, flotillaBin, port)
	dir := tempDir(t)
	if err := os.WriteFile(filepath.Join(dir, "pw.txt"), []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "compose.yml")
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	out := m1.mustCLI(t, "stack", "deploy", "-c", file, "e2e")
	t.Logf("stack deploy:\n%s", out)
	m1.waitRunning(t, "e2e_back", 1, convergeTimeout, nil)
	m1.waitRunning(t, "e2e_front", 1, convergeTimeout, nil)

	url := fmt.Sprintf("http://%s/", net.JoinHostPort(m1.publishHost, fmt.Sprint(port)))
	hc := &http.Client{Timeout: 5 * time.Second}
	eventually(t, convergeTimeout, func() error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), "asked by name: hello from e2e_back.1") {
			return fmt.Errorf("front answered %q; want the back end's greeting", body)
		}
		return nil
	})

	out = m1.mustCLI(t, "stack", "deploy", "-c", file, "e2e")
	if !strings.Contains(out, "Service e2e_back is up to date") || !strings.Contains(out, "Service e2e_front is up to date") {
		t.Errorf("a redeploy of the same file changed services:\n%s", out)
	}
	if out := m1.mustCLI(t, "stack", "ls"); !strings.Contains(out, "e2e       2") {
		t.Errorf("stack ls:\n%s", out)
	}

	// A changed front is updated, the back end left alone.
	changed := strings.Replace(compose, "    ports:", "    environment: {VERSION: \"2\"}\n    ports:", 1)
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	// --detach=false waits for the update to converge.
	out = m1.mustCLI(t, "stack", "deploy", "--detach=false", "-c", file, "e2e")
	t.Logf("stack deploy --detach=false:\n%s", out)
	if !strings.Contains(out, "Updating service e2e_front") || !strings.Contains(out, "Service e2e_back is up to date") {
		t.Errorf("a redeploy with a changed front:\n%s", out)
	}
	// --prune removes the service the file no longer has.
	pruned := changed[:strings.Index(changed, "  back:")] + "networks:\n  app: {}\n"
	if err := os.WriteFile(file, []byte(pruned), 0o644); err != nil {
		t.Fatal(err)
	}
	out = m1.mustCLI(t, "stack", "deploy", "--prune", "-c", file, "e2e")
	if !strings.Contains(out, "Removing service e2e_back") {
		t.Errorf("--prune:\n%s", out)
	}
	if out := m1.mustCLI(t, "stack", "services", "--format", "{{.Name}}", "e2e"); strings.TrimSpace(out) != "e2e_front" {
		t.Errorf("after --prune the stack has %q", out)
	}

	out = m1.mustCLI(t, "stack", "rm", "e2e")
	t.Logf("stack rm:\n%s", out)
	eventually(t, convergeTimeout, func() error {
		if out := m1.mustCLI(t, "service", "ls", "-q"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("services left: %s", out)
		}
		if out := m1.mustCLI(t, "network", "ls", "-q", "--filter", "label=com.docker.stack.namespace=e2e"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("networks left: %s", out)
		}
		if out := m1.mustCLI(t, "secret", "ls", "-q"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("secrets left: %s", out)
		}
		if out := m1.mustCLI(t, "config", "ls", "-q"); strings.TrimSpace(out) != "" {
			return fmt.Errorf("configs left: %s", out)
		}
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(m1.publishHost, fmt.Sprint(port)), time.Second); err == nil {
			conn.Close()
			return fmt.Errorf("port %d still answers", port)
		}
		return nil
	})
}
