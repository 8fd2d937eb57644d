package daemon

import (
	"strings"
	"testing"
)

// --ui-addr is protected as the TCP API is: TLS with client certificates
// anywhere, plain only on loopback and only with --insecure-tcp.
func TestCheckUIAddr(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  APITLSConfig
		addr string
		want string // "" for accepted, else a part of the error
	}{
		{"none", APITLSConfig{}, "", ""},
		{"tls anywhere", APITLSConfig{Verify: true}, "0.0.0.0:8090", ""},
		{"insecure loopback", APITLSConfig{InsecureTCP: true}, "127.0.0.1:8090", ""},
		{"insecure localhost", APITLSConfig{InsecureTCP: true}, "localhost:8090", ""},
		{"plain without opt-in", APITLSConfig{}, "127.0.0.1:8090", "--tlsverify"},
		{"insecure off loopback", APITLSConfig{InsecureTCP: true}, "0.0.0.0:8090", "only listens on loopback"},
		{"insecure on a LAN address", APITLSConfig{InsecureTCP: true}, "10.1.2.3:8090", "only listens on loopback"},
		{"no port", APITLSConfig{Verify: true}, "127.0.0.1", "HOST:PORT"},
	} {
		err := tc.tls.checkUIAddr(tc.addr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: --ui-addr %q refused: %v", tc.name, tc.addr, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: --ui-addr %q accepted, want it refused", tc.name, tc.addr)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
	}
}

func TestUIPaths(t *testing.T) {
	for p, want := range map[string]bool{"/ui": true, "/ui/": true, "/ui/live": true, "/uix": false, "/_ping": false, "/v1.47/ui/": false} {
		if got := isUIPath(p); got != want {
			t.Errorf("isUIPath(%q) = %v, want %v", p, got, want)
		}
	}
}
