package cli

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/flotilla-org/flotilla/security/ca"
)

// tlsOptions are the CLI's TLS flags, docker's names and meaning: --tls
// encrypts without checking the daemon's certificate; --tlsverify (implies
// --tls) checks it against --tlscacert. A client certificate is sent when
// its files exist, as the daemon's --tlsverify requires one.
type tlsOptions struct {
	tls, verify       bool
	caCert, cert, key string
}

// certPathEnv names the directory holding ca.pem, cert.pem and key.pem;
// tlsVerifyEnv, when not empty, turns on --tlsverify. FLOTILLA_ names win
// over docker's.
var (
	certPathEnv  = []string{"FLOTILLA_CERT_PATH", "DOCKER_CERT_PATH"}
	tlsVerifyEnv = []string{"FLOTILLA_TLS_VERIFY", "DOCKER_TLS_VERIFY"}
)

func firstEnv(names []string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// addTLSFlags registers the flags with defaults taken from the environment
// (DOCKER_CERT_PATH, else ~/.docker, as the docker CLI).
func addTLSFlags(f *pflag.FlagSet, o *tlsOptions) {
	dir := firstEnv(certPathEnv)
	if dir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".docker")
		}
	}
	f.BoolVar(&o.tls, "tls", false, "Use TLS; implied by --tlsverify")
	f.BoolVar(&o.verify, "tlsverify", firstEnv(tlsVerifyEnv) != "", "Use TLS and verify the remote (env FLOTILLA_TLS_VERIFY or DOCKER_TLS_VERIFY)")
	f.StringVar(&o.caCert, "tlscacert", filepath.Join(dir, "ca.pem"), "Trust certs signed only by this CA (dir from FLOTILLA_CERT_PATH or DOCKER_CERT_PATH)")
	f.StringVar(&o.cert, "tlscert", filepath.Join(dir, "cert.pem"), "Path to TLS certificate file")
	f.StringVar(&o.key, "tlskey", filepath.Join(dir, "key.pem"), "Path to TLS key file")
}

// httpClient returns the HTTP client for a TLS connection, or nil when TLS
// is off.
func (o tlsOptions) httpClient() (*http.Client, error) {
	if !o.tls && !o.verify {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.verify {
		pool, err := ca.LoadPool(o.caCert)
		if err != nil {
			return nil, fmt.Errorf("--tlsverify: %w (set --tlscacert or DOCKER_CERT_PATH)", err)
		}
		conf.RootCAs = pool
	} else {
		conf.InsecureSkipVerify = true // --tls alone, as docker: encrypted, unverified
	}
	_, certErr := os.Stat(o.cert)
	_, keyErr := os.Stat(o.key)
	if certErr == nil || keyErr == nil {
		pair, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, fmt.Errorf("client certificate --tlscert %s / --tlskey %s: %w", o.cert, o.key, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: conf,
		MaxIdleConns:    6,
		IdleConnTimeout: 30 * time.Second,
	}}, nil
}
