package clusterport_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// A node RPC client and server that both know flotilla-rpc/2 speak
// HTTP/2; either end that knows only flotilla-rpc/1 (an older release)
// gets HTTP/1, and the handler sees the peer's TLS state either way.
func TestRPCOverHTTP2WithHTTP1Fallback(t *testing.T) {
	cases := []struct {
		name          string
		server, proto []string // server's ALPN (nil: the mux's), client's
		want          string
	}{
		{"both new", nil, clusterport.RPCClientProtos(), "HTTP/2.0"},
		{"old client", nil, []string{clusterport.ProtoRPC}, "HTTP/1.1"},
		{"old server", []string{clusterport.ProtoRPC}, clusterport.RPCClientProtos(), "HTTP/1.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			server, client := testTLS(t)
			if c.server != nil {
				base := server.Clone()
				base.NextProtos = c.server
				server.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return base, nil }
			}
			m, err := clusterport.Listen("127.0.0.1:0", server, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			srv := clusterport.RPCServer(&http.Server{ConnContext: clusterport.ConnContext,
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					fmt.Fprintf(w, "%s peer=%t", r.Proto, clusterport.ConnOf(r.Context()) != nil)
				})})
			go func() { _ = srv.Serve(m.Sub(clusterport.ProtoRPC)) }()
			defer srv.Close()

			cfg := client(c.proto...)
			cli := nodeapi.NewClient(func() *tls.Config { return cfg }, func() uint64 { return 1 })
			defer cli.Close()
			for range 3 { // the same connection serves the next requests
				req, _ := http.NewRequest(http.MethodGet, "https://"+m.Addr().String()+"/x", nil)
				resp, err := cli.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := c.want + " peer=true"; string(body) != want {
					t.Fatalf("answered %q, want %q", body, want)
				}
			}
		})
	}
}
