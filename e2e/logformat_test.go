package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// With --log-format json every line a daemon writes is a JSON object with
// time, level and msg; once in a swarm its subsystems' lines carry their
// component and the node's ID (raft's own lines included, bridged from
// hclog).
func TestLogFormatJSON(t *testing.T) {
	c := newClusterArgs(t, 1, 1, "--no-docker", "--log-format", "json", "--log-level", "debug")
	m1, w1 := c.managers[0], c.workers[0]
	m1.mustCLI(t, "service", "create", "--name", "logged", "--replicas", "2", "--driver", "process", "--detach", "/bin/sleep", "1000")

	// raft's lines come through hclog; a worker in a quiet swarm logs
	// little more than its join.
	want := map[*node][]string{m1: {"raft", "manager", "daemon"}, w1: {"daemon"}}
	for n, comps := range want {
		eventually(t, convergeTimeout, func() error {
			seen, err := jsonLogComponents(n)
			if err != nil {
				t.Fatal(err) // a line that is not JSON will not become JSON
			}
			for _, comp := range comps {
				if !slices.Contains(seen, comp) {
					return fmt.Errorf("%s: no line of component %s with node %s yet (seen: %v)", n, comp, n.id, seen)
				}
			}
			return nil
		})
	}
}

// jsonLogComponents checks every line of n's log and returns the
// components of the lines that carry n's node ID.
func jsonLogComponents(n *node) ([]string, error) {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return nil, err
	}
	var seen []string
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, "=== e2e: ") {
			continue // the test helper's own marker (launch), not the daemon's
		}
		obj, err := decodeLogLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s: log line %d: %v\n%s", n, i+1, err, line)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := obj[k]; !ok {
				return nil, fmt.Errorf("%s: log line %d has no %q: %s", n, i+1, k, line)
			}
		}
		comp, _ := obj["component"].(string)
		if comp == "" {
			return nil, fmt.Errorf("%s: log line %d has no component: %s", n, i+1, line)
		}
		if obj["node"] == n.id && !slices.Contains(seen, comp) {
			seen = append(seen, comp)
		}
	}
	return seen, nil
}

// decodeLogLine decodes one JSON log line, refusing a key given twice (a
// second "node" or "component" would make the line ambiguous).
func decodeLogLine(line string) (map[string]any, error) {
	var obj map[string]any
	if err := json.Unmarshal([]byte(line), &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(line))
	_, _ = dec.Token() // {
	keys := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string)
		if keys[k] {
			return nil, fmt.Errorf("key %q appears twice", k)
		}
		keys[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

// A log format the daemon does not know stops it before it starts, with
// the accepted values in the message.
func TestLogFormatRefused(t *testing.T) {
	requireE2E(t)
	dir := tempDir(t)
	sock := filepath.Join(dir, "api.sock")
	r := run(cliTimeout, cleanEnv(nil), flotillaBin, "daemon", "--data-dir", filepath.Join(dir, "data"), "-H", "unix://"+sock, "--log-format", "yaml")
	if r.err == nil {
		t.Fatalf("daemon --log-format yaml started (stderr %q)", r.stderr)
	}
	if !strings.Contains(r.stderr, `--log-format "yaml": use text or json`) {
		t.Errorf("stderr = %q, want the accepted values named", r.stderr)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the API socket exists (%v): the daemon started serving", err)
	}

	// Once the format is known, the error that stops the daemon is a
	// JSON line too.
	r = run(cliTimeout, cleanEnv(nil), flotillaBin, "daemon", "--data-dir", filepath.Join(dir, "data"), "-H", "unix://"+sock,
		"--log-format", "json", "--raft-heartbeat-timeout", "5ms")
	if r.err == nil {
		t.Fatalf("daemon --raft-heartbeat-timeout 5ms started (stderr %q)", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	line, err := decodeLogLine(lines[len(lines)-1])
	if len(lines) != 1 || err != nil || line["level"] != "ERROR" || !strings.Contains(fmt.Sprint(line["err"]), "--raft-heartbeat-timeout 5ms") {
		t.Errorf("stderr = %q (%v), want one JSON error line naming the flag", r.stderr, err)
	}
}
