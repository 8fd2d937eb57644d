package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The web UI in a real browser: headless Chromium opens a manager's
// --ui-addr, sees the cluster's nodes and a service, and the page (never
// reloaded) follows a scale and a worker's death.

// uiTimeout bounds how long the page takes to show a change the cluster
// has made: a refresh every 1.5 s, with room for a loaded machine.
const uiTimeout = 15 * time.Second

// requireChromium returns the browser's path, or skips the test saying
// how to get one.
func requireChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("SKIPPED: no Chromium on this machine, so the web UI's browser test cannot run; install it with 'apt-get install -y chromium' (.ci/run does)")
	return ""
}

// uiCluster starts a cluster whose nodes each serve the web UI on their
// own loopback address (plain HTTP: --insecure-tcp), and returns it and
// each node's UI address.
func uiCluster(t *testing.T, managers, workers int) (*cluster, map[string]string) {
	t.Helper()
	addrs := map[string]string{}
	place := func(n *node) {
		addrs[n.name] = net.JoinHostPort(n.publishHost, strconv.Itoa(freePort(t)))
		n.args = []string{"--ui-addr", addrs[n.name]}
	}
	return newClusterPlaced(t, managers, workers, place, "--no-docker", "--insecure-tcp"), addrs
}

// startChromium starts headless Chromium with a profile of its own, removed
// when the test ends.
func startChromium(t *testing.T, path string) context.Context {
	t.Helper()
	profile, err := os.MkdirTemp("", "fe2e-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Flag("disable-gpu", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
	})
	return ctx
}

// pageJS reads what the page shows: each node's state, each service's
// running/desired, the leader and quorum cells, and a marker that a
// reload would erase.
const pageJS = `(() => {
  const o = {};
  document.querySelectorAll('tr[data-node]').forEach(r => { o['node ' + r.dataset.node] = r.querySelector('.state').textContent; });
  document.querySelectorAll('tr[data-service]').forEach(r => { o['service ' + r.dataset.service] = r.querySelector('.replicas').textContent;
    o['update ' + r.dataset.service] = r.querySelector('.update').textContent; });
  const text = id => { const e = document.getElementById(id); return e ? e.textContent : ''; };
  o.leader = text('leader'); o.quorum = text('quorum'); o.events = text('events');
  o.marker = String(window.e2eMarker || '');
  return o;
})()`

// pageState evaluates pageJS in the page.
func pageState(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[map[string]string](pageJS))
}

// pageShows polls the page until check accepts what it shows.
func pageShows(t *testing.T, ctx context.Context, what string, check func(map[string]string) error) {
	t.Helper()
	start := time.Now()
	eventually(t, uiTimeout, func() error {
		st, err := pageState(ctx)
		if err != nil {
			return err
		}
		if err := check(st); err != nil {
			delete(st, "events") // long, and said by the check when it matters
			return fmt.Errorf("%s: %w; the page shows %v", what, err, st)
		}
		return nil
	})
	t.Logf("the page showed %s after %s", what, time.Since(start).Round(time.Millisecond))
}

// pageHas says how what the page shows under key differs from value.
func pageHas(st map[string]string, key, value string) error {
	if st[key] != value {
		return fmt.Errorf("%s is %q, want %q", key, st[key], value)
	}
	return nil
}

// A 3-manager, 1-worker cluster in Chromium: nodes, a service, the
// leader, quorum and events appear; a scale, a rolling update and a
// worker killed with -9 show up without a reload.
func TestWebUIInBrowser(t *testing.T) {
	requireE2E(t)
	chromium := requireChromium(t)
	c, addrs := uiCluster(t, 3, 1)
	m1, w1 := c.managers[0], c.workers[0]
	m1.mustService(t, "service", "create", "--name", "web", "--replicas", "2", "--driver", "process",
		"--update-monitor", "1s", "/bin/sleep", "1000")

	ctx := startChromium(t, chromium)
	url := "http://" + addrs[m1.name] + "/ui/"
	loadCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := chromedp.Do(loadCtx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`#nodes`))); err != nil {
		t.Fatalf("opening %s in Chromium: %v", url, err)
	}
	t.Logf("Chromium loaded %s in %s", url, time.Since(start).Round(time.Millisecond))

	pageShows(t, ctx, "every node ready, the service at 2/2, a leader and quorum", func(st map[string]string) error {
		for _, n := range c.nodes {
			if err := pageHas(st, "node "+n.name, "ready"); err != nil {
				return err
			}
		}
		if err := pageHas(st, "service web", "2/2"); err != nil {
			return err
		}
		if !strings.HasPrefix(st["quorum"], "ok (3 of 3") {
			return fmt.Errorf("quorum %q, want ok with 3 of 3 managers", st["quorum"])
		}
		if leader := strings.TrimSpace(st["leader"]); leader != "m1" && leader != "m2" && leader != "m3" {
			return fmt.Errorf("leader %q, want a manager", leader)
		}
		if !strings.Contains(st["events"], "web") {
			return fmt.Errorf("the service's creation is not among the recent events")
		}
		return nil
	})
	// A reload would erase this: the checks below see it still there.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.e2eMarker = "same page"`)); err != nil {
		t.Fatal(err)
	}

	m1.mustService(t, "service", "scale", "web=4")
	pageShows(t, ctx, "the service scaled to 4/4 without a reload", func(st map[string]string) error {
		return errors.Join(pageHas(st, "service web", "4/4"), pageHas(st, "marker", "same page"))
	})

	// A rolling update slow enough (2 s between tasks) to be watched.
	m1.mustService(t, "service", "update", "--detach", "--update-delay", "2s", "--env-add", "STEP=2", "web")
	progress := regexp.MustCompile(`^updating: [0-3] of 4 tasks on the new spec$`)
	pageShows(t, ctx, "the rolling update's progress", func(st map[string]string) error {
		if !progress.MatchString(st["update web"]) {
			return fmt.Errorf("update web is %q, want it to match %s", st["update web"], progress)
		}
		return nil
	})
	pageShows(t, ctx, "the rolling update completed, 4/4 running", func(st map[string]string) error {
		if !strings.HasPrefix(st["update web"], "completed") {
			return fmt.Errorf("update web is %q, want completed", st["update web"])
		}
		return errors.Join(pageHas(st, "service web", "4/4"), pageHas(st, "marker", "same page"))
	})

	w1.Kill9()
	pageShows(t, ctx, "the killed worker down without a reload", func(st map[string]string) error {
		return errors.Join(pageHas(st, "node w1", "down"), pageHas(st, "marker", "same page"))
	})
}

// uiGet sends one request to a --ui-addr listener.
func uiGet(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: cliTimeout}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}

// The UI is read-only, escapes what users wrote, answers on the API
// socket as on --ui-addr, and on a worker says where to look instead.
func TestWebUIReadOnlyAndEscaped(t *testing.T) {
	requireE2E(t)
	c, addrs := uiCluster(t, 1, 1)
	m1, w1 := c.managers[0], c.workers[0]
	const label = `<script>alert("label")</script>`
	m1.mustService(t, "service", "create", "--detach", "--name", "esc", "--label", "note="+label, "--driver", "process", "/bin/sleep", "1000")

	code, body, err := m1.apiRequest(http.MethodGet, "/ui/", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /ui/ on the API socket: %d %v", code, err)
	}
	if !strings.Contains(string(body), `data-service="esc"`) {
		t.Errorf("the page on the API socket does not list the service:\n%s", body)
	}
	for _, page := range []string{string(body), func() string { _, b := uiGet(t, http.MethodGet, "http://"+addrs[m1.name]+"/ui/live"); return b }()} {
		if strings.Contains(page, "<script>alert") {
			t.Errorf("a service label reached the page unescaped:\n%s", page)
		}
		if !strings.Contains(page, "&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;") {
			t.Errorf("the label is not shown, escaped:\n%s", page)
		}
	}

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		if code, _, err := m1.apiRequest(m, "/ui/", nil); err != nil || code != http.StatusMethodNotAllowed {
			t.Errorf("%s /ui/ on the API socket: %d %v, want 405", m, code, err)
		}
		if code, body := uiGet(t, m, "http://"+addrs[m1.name]+"/ui/"); code != http.StatusMethodNotAllowed || !strings.Contains(body, "read-only") {
			t.Errorf("%s /ui/ on --ui-addr: %d %q, want 405 saying the UI is read-only", m, code, body)
		}
	}
	if code, _ := uiGet(t, http.MethodGet, "http://"+addrs[m1.name]+"/_ping"); code != http.StatusNotFound {
		t.Errorf("GET /_ping on --ui-addr: %d, want 404 (the listener serves the UI only)", code)
	}

	code, wbody := uiGet(t, http.MethodGet, "http://"+addrs[w1.name]+"/ui/")
	if code != http.StatusServiceUnavailable || !strings.Contains(wbody, "served by managers") || !strings.Contains(wbody, m1.addr) {
		t.Errorf("GET /ui/ on a worker: %d, want 503 naming the managers (%s):\n%s", code, m1.addr, wbody)
	}
}

// A --ui-addr that the TCP API's protection does not cover is refused at
// start, with the way out.
func TestWebUIAddrRefused(t *testing.T) {
	requireE2E(t)
	dir := tempDir(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ui-addr", "127.0.0.1:" + strconv.Itoa(freePort(t))}, "--tlsverify"},
		{[]string{"--ui-addr", "0.0.0.0:" + strconv.Itoa(freePort(t)), "--insecure-tcp"}, "only listens on loopback"},
	} {
		args := append([]string{"daemon", "--data-dir", filepath.Join(dir, "data"), "-H", "unix://" + filepath.Join(dir, "api.sock"), "--no-docker"}, tc.args...)
		r := run(cliTimeout, cleanEnv(nil), flotillaBin, args...)
		if r.err == nil {
			t.Errorf("daemon %s started; want it refused", strings.Join(tc.args, " "))
			continue
		}
		if !strings.Contains(r.stderr, tc.want) {
			t.Errorf("daemon %s: refusal does not say %q:\n%s", strings.Join(tc.args, " "), tc.want, r.stderr)
		}
	}
}

// With --tlsverify, --ui-addr is HTTPS and lets in only browsers holding a
// client certificate from --tlscacert, as the TCP API does.
func TestWebUIOverMutualTLS(t *testing.T) {
	requireE2E(t)
	base := tempDir(t)
	root, server, client, foreign := mutualTLSCerts(t, base)

	n := newNode(t, base, "uitls")
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	n.args = []string{"--no-docker", "--ui-addr", addr, "--tlsverify",
		"--tlscacert", filepath.Join(server, "ca.pem"),
		"--tlscert", filepath.Join(server, "cert.pem"), "--tlskey", filepath.Join(server, "key.pem")}
	n.Start()
	t.Cleanup(n.Stop)

	get := func(certs string) (*http.Response, error) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(root.CertPEM)
		conf := &tls.Config{RootCAs: pool}
		if certs != "" {
			cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem"))
			if err != nil {
				t.Fatal(err)
			}
			conf.Certificates = []tls.Certificate{cert}
		}
		c := http.Client{Timeout: cliTimeout, Transport: &http.Transport{TLSClientConfig: conf}}
		defer c.CloseIdleConnections()
		res, err := c.Get("https://" + addr + "/ui/")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		return res, err
	}
	// The node is in no swarm: the page says so (503), but it is served.
	if res, err := get(client); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /ui/ over TLS with a client certificate from the CA: %v %v; want the page (503: in no swarm)", res, err)
	}
	for name, certs := range map[string]string{"no client certificate": "", "a certificate from another CA": foreign} {
		if _, err := get(certs); err == nil {
			t.Errorf("GET /ui/ with %s was answered; want the TLS handshake refused", name)
		}
	}
}
