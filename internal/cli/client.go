// Package cli implements the flotilla command line: docker's grammar for the
// swarm subset (swarm, node, info, version) spoken to a flotilla daemon over
// the Docker Engine API, plus the commands of the local multi-daemon
// sandbox (package sandbox).
package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// Version is the CLI's version. Set it at build time with
//
//	go build -ldflags "-X github.com/flotilla-org/flotilla/internal/cli.Version=1.2.3"
var Version = "0.1.0"

const (
	// DefaultHost is the daemon address used when neither -H nor
	// FLOTILLA_HOST is given.
	DefaultHost = "unix:///var/run/flotilla.sock"
	// HostEnvVar names the environment variable that overrides DefaultHost.
	HostEnvVar = "FLOTILLA_HOST"
)

// defaultHost returns the value -H defaults to: FLOTILLA_HOST if set,
// otherwise DefaultHost.
func defaultHost() string {
	if h := strings.TrimSpace(os.Getenv(HostEnvVar)); h != "" {
		return h
	}
	return DefaultHost
}

// apiClient is what the commands need from the Engine API client.
// *client.Client satisfies it.
type apiClient = client.APIClient

// cliEnv is shared by every command of one command tree: the global flags
// and the API client built from them on first use.
type cliEnv struct {
	host string // value of -H/--host
	tls  tlsOptions

	mu  sync.Mutex
	api *client.Client

	// stderr is where warnings about answers go (the running command's
	// stderr, set by runE); staleWarned makes the stale-read warning
	// appear once per command run, not once per request.
	stderr      io.Writer
	staleWarned sync.Once
}

// staleReadWarning is printed once per command when any answer carried
// nodeapi.HeaderStaleRead (a manager without a quorum answered from its
// own replica).
const staleReadWarning = "warning: this manager cannot reach a quorum of managers; the answer may be stale " +
	"(restore quorum: start the stopped managers, or see 'flotilla swarm init --force-new-cluster')"

// noteResponse warns on stderr, once per command run, when the daemon
// marked an answer as possibly stale.
func (e *cliEnv) noteResponse(resp *http.Response) {
	if resp == nil || resp.Header.Get(nodeapi.HeaderStaleRead) == "" {
		return
	}
	e.staleWarned.Do(func() {
		e.mu.Lock()
		w := e.stderr
		e.mu.Unlock()
		if w == nil {
			w = os.Stderr
		}
		fmt.Fprintln(w, staleReadWarning)
	})
}

// client returns the API client for --host, creating it on first use. No
// request is made here; API version negotiation happens on the first call.
func (e *cliEnv) client() (apiClient, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.api != nil {
		return e.api, nil
	}
	host, err := normalizeHost(e.host)
	if err != nil {
		return nil, err
	}
	hc, err := e.tls.httpClient()
	if err != nil {
		return nil, err
	}
	c, err := newAPIClientOver(host, hc, client.WithHTTPResponseHook(e.noteResponse))
	if err != nil {
		return nil, err
	}
	e.host = host
	e.api = c
	return c, nil
}

// newAPIClient builds a moby client for host (already normalized). The API
// version is negotiated with the daemon's /_ping on first use.
func newAPIClient(host string, opts ...client.Opt) (*client.Client, error) {
	return newAPIClientOver(host, nil, opts...)
}

// newAPIClientOver is newAPIClient over hc when not nil (TLS).
func newAPIClientOver(host string, hc *http.Client, opts ...client.Opt) (*client.Client, error) {
	// The HTTP client goes first: WithHost sets its transport's dialer.
	return client.New(append([]client.Opt{
		client.WithHTTPClient(hc),
		client.WithHost(host),
		client.WithUserAgent("flotilla-cli/" + Version),
	}, opts...)...)
}

// normalizeHost validates a -H value. It accepts unix:///path and
// tcp://host:port.
func normalizeHost(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", errors.New("no daemon address: set -H/--host or " + HostEnvVar)
	}
	proto, addr, ok := strings.Cut(h, "://")
	if !ok || addr == "" {
		return "", fmt.Errorf("invalid daemon address %q: use unix:///path/to/socket or tcp://host:port", h)
	}
	switch proto {
	case "unix":
		return h, nil
	case "tcp":
		hostport, _, _ := strings.Cut(addr, "/")
		if _, port, err := net.SplitHostPort(hostport); err != nil || port == "" {
			return "", fmt.Errorf("invalid daemon address %q: tcp addresses need a port (tcp://host:port)", h)
		}
		return h, nil
	default:
		return "", fmt.Errorf("invalid daemon address %q: unsupported scheme %q (use unix:// or tcp://)", h, proto)
	}
}

// describeError turns an error from a command into the text printed for the
// user, docker style: daemon errors already read "Error response from
// daemon: ..."; failures to reach the daemon get an explanation naming the
// address and how to fix it.
func describeError(err error, host string) string {
	if err == nil {
		return ""
	}
	if client.IsErrConnectionFailed(err) {
		return connectionHelp(err, host)
	}
	return err.Error()
}

func connectionHelp(err error, host string) string {
	what := "the flotilla daemon at " + host
	if strings.HasPrefix(host, "unix://") {
		what = "the flotilla daemon socket " + strings.TrimPrefix(host, "unix://") + " (" + host + ")"
	}
	if strings.Contains(err.Error(), "permission denied") {
		return fmt.Sprintf("Cannot connect to %s: permission denied.\n"+
			"Check the socket's permissions, or point the CLI at another daemon with -H/--host or %s.", what, HostEnvVar)
	}
	return fmt.Sprintf("Cannot connect to %s. Is the daemon running?\n"+
		"Start one with 'flotilla daemon', or point the CLI at a running daemon with -H/--host or %s (for a local test cluster: 'flotilla sandbox up').",
		what, HostEnvVar)
}

// cmdError is returned by commands whose error has already been printed.
type cmdError struct {
	msg string
	err error
}

func (e *cmdError) Error() string { return e.msg }
func (e *cmdError) Unwrap() error { return e.err }

// runE adapts a command body: errors are printed docker style to stderr
// (without cobra's prefix or usage) and returned so Execute reports failure.
func (e *cliEnv) runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		e.mu.Lock()
		e.stderr = cmd.ErrOrStderr()
		e.mu.Unlock()
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		var ce *cmdError
		if errors.As(err, &ce) {
			cmd.SilenceErrors = true
			return err
		}
		host := e.host
		if h, herr := normalizeHost(host); herr == nil {
			host = h
		}
		msg := describeError(err, host)
		fmt.Fprintln(cmd.ErrOrStderr(), msg)
		// Already printed: keep cobra from printing it again.
		cmd.SilenceErrors = true
		return &cmdError{msg: msg, err: err}
	}
}
