package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/security/ca"
)

// mutualTLSCerts makes, under base, the certificate directories of a TCP
// API test: a server's and a client's from root, and a foreign client's
// from another CA.
func mutualTLSCerts(t *testing.T, base string) (root *ca.RootCA, server, client, foreign string) {
	t.Helper()
	root, other := newRoot(t), newRoot(t)
	server = certDir(t, root, filepath.Join(base, "server"), "server")
	client = certDir(t, root, filepath.Join(base, "client"), "client")
	foreign = certDir(t, other, filepath.Join(base, "foreign"), "foreign")
	return root, server, client, foreign
}

// certDir writes ca.pem, cert.pem and key.pem (DOCKER_CERT_PATH's layout)
// for a certificate that root signs, valid for 127.0.0.1 as server and
// client.
func certDir(t *testing.T, root *ca.RootCA, dir, name string) string {
	t.Helper()
	keyPEM, csrPEM, err := ca.NewKeyAndCSR(name)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := root.IssueNodeCert(csrPEM, name, "manager", "tcp-api-test", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for file, data := range map[string][]byte{"ca.pem": root.CertPEM, "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newRoot(t *testing.T) *ca.RootCA {
	t.Helper()
	r, err := ca.NewRootCA("tcp-api-test")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A tcp:// API without TLS flags is refused at start, with the way out.
func TestTCPAPIWithoutTLSRefused(t *testing.T) {
	requireE2E(t)
	dir := tempDir(t)
	host := "tcp://127.0.0.1:" + strconv.Itoa(freePort(t))
	r := run(cliTimeout, cleanEnv(nil), flotillaBin, "daemon", "--data-dir", filepath.Join(dir, "data"), "-H", host)
	if r.err == nil {
		t.Fatalf("daemon -H %s without TLS started; want it refused", host)
	}
	for _, want := range []string{"needs TLS with client certificates", "--tlsverify --tlscacert", "--insecure-tcp"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("refusal does not say %q:\n%s", want, r.stderr)
		}
	}
}

// --insecure-tcp serves plain TCP and warns loudly at start.
func TestTCPAPIInsecureWarns(t *testing.T) {
	requireE2E(t)
	n := newNode(t, tempDir(t), "insecure")
	host := "tcp://127.0.0.1:" + strconv.Itoa(freePort(t))
	n.args = []string{"-H", host, "--insecure-tcp", "--no-docker"}
	n.Start()
	t.Cleanup(n.Stop)
	if !strings.Contains(readAll(t, n.logPath), "WITHOUT TLS OR AUTHENTICATION") {
		t.Errorf("no warning about the unauthenticated TCP API in the log:\n%s", tail(n.logPath, logTailLines))
	}
	if r := run(cliTimeout, cleanEnv(nil), flotillaBin, "-H", host, "version"); r.err != nil {
		t.Errorf("CLI over --insecure-tcp: %v", r.err)
	}
}

// With --tlsverify only clients holding a certificate from --tlscacert get
// in: the flotilla CLI (flags and DOCKER_CERT_PATH) and the docker CLI.
func TestTCPAPIMutualTLS(t *testing.T) {
	requireE2E(t)
	base := tempDir(t)
	root, server, client, foreign := mutualTLSCerts(t, base)
	noCert := filepath.Join(base, "nocert")
	if err := os.MkdirAll(noCert, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noCert, "ca.pem"), root.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	n := newNode(t, base, "tls")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	host := "tcp://" + addr
	n.args = []string{"-H", host, "--no-docker", "--tlsverify",
		"--tlscacert", filepath.Join(server, "ca.pem"),
		"--tlscert", filepath.Join(server, "cert.pem"), "--tlskey", filepath.Join(server, "key.pem")}
	n.Start()
	t.Cleanup(n.Stop)

	// HOME without ~/.docker: no default certificate sneaks in.
	env := func(extra ...string) []string { return cleanEnv(append([]string{"HOME=" + base}, extra...)) }
	flags := func(d string) []string {
		return []string{"-H", host, "--tlsverify", "--tlscacert", filepath.Join(d, "ca.pem"),
			"--tlscert", filepath.Join(d, "cert.pem"), "--tlskey", filepath.Join(d, "key.pem")}
	}
	if r := run(cliTimeout, env(), flotillaBin, append(flags(client), "info")...); r.err != nil {
		t.Errorf("flotilla CLI with a certificate from the CA: %v", r.err)
	}
	if r := run(cliTimeout, env("DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+client), flotillaBin, "-H", host, "info"); r.err != nil {
		t.Errorf("flotilla CLI with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH: %v", r.err)
	}
	refused := func(what string, r cliResult) {
		t.Helper()
		if r.err == nil {
			t.Errorf("%s: the daemon answered; want it refused:\n%s", what, r.stdout)
		}
	}
	refused("flotilla CLI with no client certificate", run(cliTimeout, env("DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+noCert), flotillaBin, "-H", host, "info"))
	refused("flotilla CLI with a certificate from another CA", run(cliTimeout, env(), flotillaBin, append(flags(foreign), "info")...))
	refused("flotilla CLI without TLS", run(cliTimeout, env(), flotillaBin, "-H", host, "info"))

	hc := &http.Client{Timeout: 10 * time.Second}
	if resp, err := hc.Get("http://" + addr + "/_ping"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP GET /_ping answered 200; want it refused")
		}
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		// A raw request gets no API answer either.
		fmt.Fprintf(c, "GET /info HTTP/1.0\r\n\r\n")
		buf := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, _ := c.Read(buf)
		c.Close()
		if strings.Contains(string(buf[:k]), "Swarm") {
			t.Errorf("plain HTTP GET /info answered with the daemon's info: %q", buf[:k])
		}
	}

	dockerBin, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed: skipping the docker CLI over TLS")
	}
	denv := func(extra ...string) []string {
		return env(append([]string{"DOCKER_HOST=" + host, "DOCKER_CONFIG=" + filepath.Join(base, "docker-config")}, extra...)...)
	}
	if r := run(cliTimeout, denv(), dockerBin, "--tlsverify", "--tlscacert", filepath.Join(client, "ca.pem"),
		"--tlscert", filepath.Join(client, "cert.pem"), "--tlskey", filepath.Join(client, "key.pem"),
		"info", "--format", "{{.Swarm.LocalNodeState}}"); r.err != nil {
		t.Errorf("docker CLI with a certificate from the CA: %v", r.err)
	}
	refused("docker CLI with a certificate from another CA", run(cliTimeout, denv("DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+foreign), dockerBin, "info"))
}
