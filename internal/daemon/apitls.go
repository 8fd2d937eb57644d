package daemon

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/flotilla-org/flotilla/security/ca"
)

// APITLSConfig protects tcp:// API listeners, with dockerd's flags: with
// Verify, clients must present a certificate signed by CACert. A tcp://
// listener without it is refused unless InsecureTCP is set.
type APITLSConfig struct {
	Verify            bool
	CACert, Cert, Key string
	InsecureTCP       bool
}

// insecureTCPWarning is logged at start for every plain tcp:// listener, as
// dockerd warns about an unauthenticated TCP socket.
const insecureTCPWarning = "API listening on TCP WITHOUT TLS OR AUTHENTICATION (--insecure-tcp): any user or process that can reach this port controls the cluster and can run commands as the daemon's user (root?). Use --tlsverify --tlscacert --tlscert --tlskey instead"

// check says what is wrong with the flags for hosts, before anything starts.
func (c APITLSConfig) check(hosts []string) error {
	anyTLSFile := c.CACert != "" || c.Cert != "" || c.Key != ""
	if anyTLSFile && !c.Verify {
		return fmt.Errorf("--tlscacert, --tlscert and --tlskey need --tlsverify (clients must present a certificate signed by --tlscacert)")
	}
	if c.Verify && (c.CACert == "" || c.Cert == "" || c.Key == "") {
		return fmt.Errorf("--tlsverify needs --tlscacert (CA that signs client certificates), --tlscert and --tlskey (the daemon's certificate and key)")
	}
	if c.Verify && c.InsecureTCP {
		return fmt.Errorf("--tlsverify and --insecure-tcp contradict each other: give one of them")
	}
	for _, h := range hosts {
		if strings.HasPrefix(h, "tcp://") && !c.Verify && !c.InsecureTCP {
			return fmt.Errorf("-H %s: a TCP API needs TLS with client certificates, or anyone who can reach the port controls the cluster.\n"+
				"Start the daemon with --tlsverify --tlscacert ca.pem --tlscert server-cert.pem --tlskey server-key.pem "+
				"(as dockerd: https://docs.docker.com/engine/security/protect-access/), and clients with --tlsverify or DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=DIR; "+
				"or use a unix socket; or, on a machine where every local user is trusted, pass --insecure-tcp", h)
		}
	}
	return nil
}

// serverConfig builds the TLS config of tcp:// listeners (nil without
// --tlsverify).
func (c APITLSConfig) serverConfig() (*tls.Config, error) {
	if !c.Verify {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("--tlscert %s / --tlskey %s: %w", c.Cert, c.Key, err)
	}
	pool, err := ca.LoadPool(c.CACert)
	if err != nil {
		return nil, fmt.Errorf("--tlscacert: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// wrap serves ln with TLS when configured, and warns about a plain one.
func (d *Daemon) wrapTCP(host string, ln net.Listener, conf *tls.Config) net.Listener {
	if conf == nil {
		d.log.Warn(insecureTCPWarning, "host", host)
		return ln
	}
	return tls.NewListener(ln, conf)
}
