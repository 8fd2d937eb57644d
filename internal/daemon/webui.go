package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/flotilla-org/flotilla/internal/webui"
)

// uiWarning is logged at start for a --ui-addr without TLS.
const uiWarning = "web UI listening on TCP WITHOUT TLS OR AUTHENTICATION (--insecure-tcp): any user or process that can reach this port sees the whole cluster. Use --tlsverify --tlscacert --tlscert --tlskey instead"

// withUI serves the web UI under /ui/ beside the API on the API's own
// listeners.
func (d *Daemon) withUI(api http.Handler) http.Handler {
	ui := webui.New(&backend{d: d})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUIPath(r.URL.Path) {
			ui.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

func isUIPath(p string) bool {
	return p+"/" == webui.Prefix || strings.HasPrefix(p, webui.Prefix)
}

// checkUIAddr says what is wrong with --ui-addr: it is protected as the
// TCP API is, with TLS and client certificates (--tlsverify), or served
// in plain on a loopback address with --insecure-tcp.
func (c APITLSConfig) checkUIAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--ui-addr %s: %v; give HOST:PORT, such as 127.0.0.1:8090", addr, err)
	}
	if c.Verify {
		return nil
	}
	if !c.InsecureTCP {
		return fmt.Errorf("--ui-addr %s: the web UI on TCP is protected as the TCP API is: start the daemon with --tlsverify --tlscacert ca.pem --tlscert server-cert.pem --tlskey server-key.pem "+
			"(browsers then need a client certificate signed by ca.pem), or, on a loopback address of a machine where every local user is trusted, pass --insecure-tcp; "+
			"the UI is also served on the API socket at /ui/", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--ui-addr %s: without TLS (--insecure-tcp) the web UI only listens on loopback addresses (127.0.0.1, ::1); use --tlsverify to serve it on other addresses", addr)
	}
	return nil
}

// serveUI opens --ui-addr, if given: the web UI alone, read-only.
func (d *Daemon) serveUI(conf *tls.Config) error {
	addr := d.cfg.UIAddr
	if addr == "" {
		return nil
	}
	if err := d.cfg.APITLS.checkUIAddr(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--ui-addr %s: %w", addr, err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	} else {
		d.log.Warn(uiWarning, "addr", addr)
	}
	ui := webui.New(&backend{d: d})
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, webui.Prefix, http.StatusFound)
			return
		}
		if !isUIPath(r.URL.Path) {
			http.Error(w, "this listener (--ui-addr) serves the web UI only, at "+webui.Prefix, http.StatusNotFound)
			return
		}
		ui.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	d.servers = append(d.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("web UI listener stopped", "addr", addr, "err", err)
		}
	}()
	scheme := "http"
	if conf != nil {
		scheme = "https"
	}
	d.log.Info("web UI listening", "url", scheme+"://"+addr+webui.Prefix)
	return nil
}
