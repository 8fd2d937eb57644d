package e2e

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/security/encryption"
)

// Values of a service that must never be readable in a manager's data dir
// while autolock is on.
var autolockSecrets = []string{"autolock-secret-svc", "autolock-env-value", "autolock-label-value"}

// runStdin runs a CLI with stdin (the unlock key is read from it when it
// is not a terminal).
func runStdin(env []string, stdin, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(cliTimeout):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("%s %v hangs", name, args)
	}
}

func (n *node) unlock(key string) (string, error) {
	return runStdin(cleanEnv(nil), key+"\n", flotillaBin, "-H", n.host(), "swarm", "unlock")
}

func (n *node) keyFile() string { return filepath.Join(n.dataDir, "swarm", "certs", "node.key") }

func (n *node) localState(t *testing.T) string {
	t.Helper()
	si, err := n.swarmInfo()
	if err != nil {
		t.Fatal(err)
	}
	return si.LocalNodeState
}

// grepDir lists the files under dir holding s.
func grepDir(t *testing.T, dir, s string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(s)) {
			hits = append(hits, strings.TrimPrefix(p, dir))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// keyFileSealedWith polls until n's node.key opens with key (nil: plain),
// i.e. the manager has re-wrapped its keys after a change of the swarm's
// unlock key.
func keyFileSealedWith(t *testing.T, n *node, key string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(n.keyFile())
		if err != nil {
			return err
		}
		if key == "" {
			if encryption.IsLockedKeyFile(b) {
				return fmt.Errorf("%s's node.key is still sealed", n)
			}
			return nil
		}
		k, err := encryption.ParseUnlockKey(key)
		if err != nil {
			return err
		}
		_, err = encryption.DecodeKeyFile(b, &k)
		return err
	})
}

func unlockKeyOf(t *testing.T, out string) string {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "SWMKEY-1-") {
			return f
		}
	}
	t.Fatalf("no unlock key in %q", out)
	return ""
}

// Three managers formed with `swarm init --autolock` (one joined, one
// promoted from worker): at rest the Raft
// data and node keys hold no plaintext; a restarted manager is locked and
// serves nothing (the others carry on without it) until the right key
// unlocks it; rotation retires the old key; autolock=false makes restarts
// come up unlocked.
func TestAutolock(t *testing.T) {
	c := newClusterArgs(t, 0, 0, "--no-docker")
	m1, m2, m3 := c.spare("m1"), c.spare("m2"), c.spare("m3")
	c.managers = []*node{m1, m2, m3}
	key := unlockKeyOf(t, m1.mustCLI(t, "swarm", "init", "--autolock", "--listen-addr", m1.addr))
	if got := strings.TrimSpace(m1.mustCLI(t, "swarm", "unlock-key", "-q")); got != key {
		t.Fatalf("unlock-key -q = %q, init printed %q", got, key)
	}
	token := strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", "manager"))
	m2.mustCLI(t, "swarm", "join", "--token", token, "--listen-addr", m2.addr, m1.addr)
	// m3 joins as a worker (workers are never locked) and is promoted.
	token = strings.TrimSpace(m1.mustCLI(t, "swarm", "join-token", "-q", "worker"))
	m3.mustCLI(t, "swarm", "join", "--token", token, "--listen-addr", m3.addr, m1.addr)
	if b, err := os.ReadFile(m3.keyFile()); err != nil || encryption.IsLockedKeyFile(b) {
		t.Fatalf("a worker's node.key is sealed (%v)", err)
	}
	m1.mustCLI(t, "node", "promote", "m3")
	for _, m := range c.managers {
		si, err := m.swarmInfo()
		if err != nil {
			t.Fatal(err)
		}
		m.id = si.NodeID
	}
	c.waitReady(m1, convergeTimeout)
	m1.mustCLI(t, "service", "create", "--name", "autolock-secret-svc", "--replicas", "0", "--driver", "process",
		"--env", "SECRET=autolock-env-value", "--label", "secret=autolock-label-value", "--detach", "/bin/sleep", "1000")
	// Joined and promoted managers learn the key through Raft.
	keyFileSealedWith(t, m2, key)
	keyFileSealedWith(t, m3, key)

	m2.Stop()
	for _, s := range autolockSecrets {
		if hits := grepDir(t, m2.dataDir, s); len(hits) > 0 {
			t.Errorf("%q is readable in %s's data dir: %v", s, m2, hits)
		}
	}
	if hits := grepDir(t, m2.dataDir, "PRIVATE KEY"); len(hits) > 0 {
		t.Errorf("a plain private key is in %s's data dir: %v", m2, hits)
	}

	// Restarted: locked, serves nothing, takes no part in Raft.
	m2.Start()
	if st := m2.localState(t); st != "locked" {
		t.Fatalf("%s restarted in state %q, want locked", m2, st)
	}
	code, body, err := m2.apiRequest(http.MethodGet, "/services", nil)
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(string(body), `Please use \"docker swarm unlock\" to unlock it`) {
		t.Errorf("GET /services on a locked manager: %d %s %v", code, body, err)
	}
	if _, stderr, err := m2.CLI("node", "ls"); err == nil || !strings.Contains(stderr, "Swarm is encrypted and needs to be unlocked") {
		t.Errorf("node ls on a locked manager: %v %s", err, stderr)
	}
	eventually(t, downTimeout, rowsMatch(m1, func(rows map[string]nodeRow) error {
		// Unreachable: not in Raft; Down: its agent does not run either.
		if r := rows[m2.name]; r.ManagerStatus != "Unreachable" || r.Status != "Down" {
			return fmt.Errorf("the locked %s shows as %v", m2, r)
		}
		return nil
	}))
	m1.mustCLI(t, "service", "update", "--label-add", "while-locked=1", "autolock-secret-svc") // the others keep a quorum

	// Bad keys are refused and change nothing.
	sealedBefore, err := os.ReadFile(m2.keyFile())
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := encryption.NewKey()
	if out, err := m2.unlock(wrong.UnlockKeyString()); err == nil || !strings.Contains(out, "invalid key provided") {
		t.Errorf("unlock with a wrong key: %v %s", err, out)
	}
	code, body, _ = m2.apiRequest(http.MethodPost, "/swarm/unlock", map[string]string{"UnlockKey": wrong.UnlockKeyString()})
	if code != http.StatusUnauthorized {
		t.Errorf("POST /swarm/unlock with a wrong key: %d %s, want 401", code, body)
	}
	if out, err := m2.unlock("not-a-key"); err == nil || !strings.Contains(out, "invalid key string") {
		t.Errorf("unlock with garbage: %v %s", err, out)
	}
	if st := m2.localState(t); st != "locked" {
		t.Fatalf("after refused keys %s is %q", m2, st)
	}
	if after, err := os.ReadFile(m2.keyFile()); err != nil || !bytes.Equal(after, sealedBefore) {
		t.Errorf("refused unlocks changed node.key (%v)", err)
	}

	// The right key: it rejoins and sees what happened while it was locked.
	start := time.Now()
	if out, err := m2.unlock(key); err != nil {
		t.Fatalf("unlock with the right key: %v %s", err, out)
	}
	t.Logf("swarm unlock returned after %s (the manager had caught up with the leader)", time.Since(start).Round(time.Millisecond))
	c.waitReady(m1, convergeTimeout)
	eventually(t, convergeTimeout, func() error {
		out, _, err := m2.CLI("service", "inspect", "--format", "{{json .Spec.Labels}}", "autolock-secret-svc")
		if err != nil || !strings.Contains(out, "while-locked") {
			return fmt.Errorf("%s does not see the update made while it was locked: %v %s", m2, err, out)
		}
		return nil
	})
	if out, err := m2.unlock(key); err == nil || !strings.Contains(out, "swarm is not locked") {
		t.Errorf("unlock of an unlocked node: %v %s", err, out)
	}

	// Rotation: every manager re-wraps; the old key no longer unlocks.
	newKey := strings.TrimSpace(m1.mustCLI(t, "swarm", "unlock-key", "-q", "--rotate"))
	if newKey == key || !strings.HasPrefix(newKey, "SWMKEY-1-") {
		t.Fatalf("rotated key %q (old %q)", newKey, key)
	}
	keyFileSealedWith(t, m3, newKey)
	m3.Stop()
	m3.Start()
	if out, err := m3.unlock(key); err == nil || !strings.Contains(out, "invalid key provided") {
		t.Errorf("the rotated-away key unlocked %s: %v %s", m3, err, out)
	}
	if out, err := m3.unlock(newKey); err != nil {
		t.Fatalf("unlock with the new key: %v %s", err, out)
	}
	c.waitReady(m1, convergeTimeout)

	// A backup of the autolocked swarm restores sealed with the same key.
	backup := filepath.Join(c.base, "autolock.backup")
	m1.mustCLI(t, "swarm", "backup", "-o", backup)

	// Autolock off: keys go back to plain and a restart needs no key.
	m1.mustCLI(t, "swarm", "update", "--autolock=false")
	if _, stderr, err := m1.CLI("swarm", "unlock-key"); err == nil || !strings.Contains(stderr, "no unlock key is set") {
		t.Errorf("unlock-key with autolock off: %v %s", err, stderr)
	}
	keyFileSealedWith(t, m2, "")
	m2.Stop()
	if hits := grepDir(t, m2.dataDir, "PRIVATE KEY"); len(hits) == 0 {
		t.Error("control: without autolock node.key should be a plain PEM key")
	}
	m2.Start()
	if st := m2.localState(t); st != "active" {
		t.Fatalf("%s restarted with autolock off in state %q", m2, st)
	}
	c.waitReady(m1, convergeTimeout)

	r1 := c.spare("r1")
	r1.mustCLI(t, "swarm", "restore", "-i", backup, "--listen-addr", r1.addr)
	keyFileSealedWith(t, r1, newKey)
	r1.Stop()
	for _, s := range autolockSecrets {
		if hits := grepDir(t, r1.dataDir, s); len(hits) > 0 {
			t.Errorf("%q is readable in the restored manager's data dir: %v", s, hits)
		}
	}
	r1.Start()
	if st := r1.localState(t); st != "locked" {
		t.Errorf("the restored manager of an autolocked swarm restarted %q", st)
	}
}
