package ca

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

const testProto = "flotilla/1"

// handshakeResult is what each end of a test connection saw.
type handshakeResult struct {
	serverErr  error    // handshake error, or the post-handshake "peer must have a cert" check
	clientErr  error    // handshake error, or error reading the server's reply
	serverPeer Identity // client's identity as seen by the server
	clientPeer Identity // server's identity as seen by the client
	proto      string   // negotiated ALPN protocol, client side
}

// handshake connects a client and server over net.Pipe. The server, like a
// handler that needs an authenticated caller, requires a verified client
// certificate after the handshake, then sends one byte. The client reads
// that byte: in TLS 1.3 the client's Handshake returns before the server
// has checked the client certificate, so a refusal shows up on that read.
func handshake(t *testing.T, root *RootCA, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	sc, cc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	_ = sc.SetDeadline(deadline)
	_ = cc.SetDeadline(deadline)

	var res handshakeResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sc.Close()
		srv := tls.Server(sc, serverCfg)
		if err := srv.Handshake(); err != nil {
			res.serverErr = err
			return
		}
		id, err := root.VerifyPeer(srv.ConnectionState().PeerCertificates)
		if err != nil {
			res.serverErr = err
			return
		}
		res.serverPeer = id
		_, _ = srv.Write([]byte{1})
	}()

	cli := tls.Client(cc, clientCfg)
	res.clientErr = cli.Handshake()
	if res.clientErr == nil {
		state := cli.ConnectionState()
		res.proto = state.NegotiatedProtocol
		if len(state.PeerCertificates) > 0 {
			res.clientPeer, _ = IdentityOf(state.PeerCertificates[0])
		}
		_, res.clientErr = io.ReadFull(cli, make([]byte, 1))
	}
	cc.Close()
	<-done
	return res
}

func serverConfig(t *testing.T, n testNode, root *RootCA) *tls.Config {
	t.Helper()
	cfg, err := ServerTLSConfig(n.certPEM, n.keyPEM, root, []string{testProto})
	if err != nil {
		t.Fatalf("ServerTLSConfig: %v", err)
	}
	return cfg
}

func clientConfig(t *testing.T, n testNode, root *RootCA) *tls.Config {
	t.Helper()
	cfg, err := ClientTLSConfig(n.certPEM, n.keyPEM, root, testProto)
	if err != nil {
		t.Fatalf("ClientTLSConfig: %v", err)
	}
	return cfg
}

func TestMutualTLS(t *testing.T) {
	root := newTestRoot(t, testCluster)
	foreign := newTestRoot(t, testCluster)
	manager := issue(t, root, "manager-1", RoleManager)
	worker := issue(t, root, "worker-1", RoleWorker)
	foreignNode := issue(t, foreign, "intruder", RoleManager)
	expired := issueAt(t, root, time.Now().Add(-48*time.Hour), "worker-old", RoleWorker, time.Hour)

	tests := []struct {
		name           string
		server, client *tls.Config
		wantServerErr  string // "" means the server accepted the client
		wantClientErr  string // "" means the client accepted the server
	}{
		{
			name:   "both from our CA",
			server: serverConfig(t, manager, root),
			client: clientConfig(t, worker, root),
		},
		{
			name:          "client certificate from another CA",
			server:        serverConfig(t, manager, root),
			client:        clientConfig(t, foreignNode, root),
			wantServerErr: "unknown authority",
			wantClientErr: "unknown certificate authority",
		},
		{
			name:          "expired client certificate",
			server:        serverConfig(t, manager, root),
			client:        clientConfig(t, expired, root),
			wantServerErr: "expired",
			wantClientErr: "expired certificate",
		},
		{
			name:          "server certificate from another CA",
			server:        serverConfig(t, foreignNode, foreign),
			client:        clientConfig(t, worker, root),
			wantServerErr: "bad certificate",
			wantClientErr: "server certificate refused",
		},
		{
			name:          "expired server certificate",
			server:        serverConfig(t, expired, root),
			client:        clientConfig(t, worker, root),
			wantServerErr: "bad certificate",
			wantClientErr: "expired",
		},
		{
			// A joining node has no certificate: the handshake succeeds and
			// it is the handler's check that refuses it.
			name:          "client without a certificate",
			server:        serverConfig(t, manager, root),
			client:        clientConfig(t, testNode{}, root),
			wantServerErr: "no certificate presented",
			wantClientErr: "EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := handshake(t, root, tt.server, tt.client)
			checkErr(t, "server", res.serverErr, tt.wantServerErr)
			checkErr(t, "client", res.clientErr, tt.wantClientErr)
			if tt.wantServerErr == "" && tt.wantClientErr == "" {
				if res.serverPeer.NodeID != "worker-1" || res.serverPeer.Role != RoleWorker {
					t.Errorf("server sees peer %+v, want worker-1", res.serverPeer)
				}
				if res.clientPeer.NodeID != "manager-1" || res.clientPeer.Role != RoleManager {
					t.Errorf("client sees peer %+v, want manager-1", res.clientPeer)
				}
				if res.proto != testProto {
					t.Errorf("negotiated protocol %q, want %q", res.proto, testProto)
				}
			}
		})
	}
}

func checkErr(t *testing.T, side string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: unexpected error: %v", side, err)
	case want != "" && err == nil:
		t.Errorf("%s: no error, want one containing %q", side, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q, want one containing %q", side, err, want)
	}
}

// The join flow's first contact: a node that does not know the root yet
// can still complete a handshake with a manager, because FetchInsecureConfig
// trusts nothing and presents nothing. (Trust comes afterwards, from the
// join token's digest of the downloaded root; see root_test.go.)
func TestFetchInsecureConfig(t *testing.T) {
	root := newTestRoot(t, testCluster)
	manager := issue(t, root, "manager-1", RoleManager)
	srvCfg := serverConfig(t, manager, root)

	sc, cc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	_ = sc.SetDeadline(deadline)
	_ = cc.SetDeadline(deadline)
	srvErr := make(chan error, 1)
	go func() {
		defer sc.Close()
		srvErr <- tls.Server(sc, srvCfg).Handshake()
	}()
	cli := tls.Client(cc, FetchInsecureConfig(testProto))
	err := cli.Handshake()
	state := cli.ConnectionState()
	cc.Close()
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if state.NegotiatedProtocol != testProto {
		t.Errorf("negotiated %q, want %q", state.NegotiatedProtocol, testProto)
	}
	if len(state.PeerCertificates) == 0 {
		t.Fatal("no server certificate seen")
	}
	cfg := FetchInsecureConfig("")
	if len(cfg.Certificates) != 0 || cfg.GetClientCertificate != nil || cfg.NextProtos != nil {
		t.Error("insecure config presents a certificate or protocols it was not given")
	}
}

func TestTLSConfigFields(t *testing.T) {
	root := newTestRoot(t, testCluster)
	n := issue(t, root, "node-a", RoleWorker)

	s := serverConfig(t, n, root)
	if s.ClientAuth != tls.VerifyClientCertIfGiven || s.MinVersion != tls.VersionTLS13 || s.ClientCAs == nil {
		t.Errorf("server config: ClientAuth=%v MinVersion=%x ClientCAs=%v", s.ClientAuth, s.MinVersion, s.ClientCAs)
	}
	c := clientConfig(t, n, root)
	if !c.InsecureSkipVerify || c.VerifyConnection == nil || c.MinVersion != tls.VersionTLS13 {
		t.Error("client config must replace hostname checks with its own verification and require TLS 1.3")
	}
	if c.GetClientCertificate == nil {
		t.Error("client config with a certificate does not present it")
	}
	noCert := clientConfig(t, testNode{}, root)
	if noCert.GetClientCertificate != nil || len(noCert.Certificates) != 0 {
		t.Error("client config without a certificate presents one")
	}
	if err := noCert.VerifyConnection(tls.ConnectionState{}); err == nil {
		t.Error("client accepts a server that presents no certificate")
	}
}

func TestTLSConfigErrors(t *testing.T) {
	root := newTestRoot(t, testCluster)
	n := issue(t, root, "node-a", RoleWorker)
	other := issue(t, root, "node-b", RoleWorker)

	tests := []struct {
		name      string
		cert, key []byte
		root      *RootCA
		server    bool
	}{
		{"server without root", n.certPEM, n.keyPEM, nil, true},
		{"server without certificate", nil, nil, root, true},
		{"server with mismatched key", n.certPEM, other.keyPEM, root, true},
		{"server with garbage", []byte("x"), []byte("y"), root, true},
		{"client without root", n.certPEM, n.keyPEM, nil, false},
		{"client with certificate but no key", n.certPEM, nil, root, false},
		{"client with key but no certificate", nil, n.keyPEM, root, false},
		{"client with mismatched key", n.certPEM, other.keyPEM, root, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				cfg *tls.Config
				err error
			)
			if tt.server {
				cfg, err = ServerTLSConfig(tt.cert, tt.key, tt.root, nil)
			} else {
				cfg, err = ClientTLSConfig(tt.cert, tt.key, tt.root, "")
			}
			if err == nil {
				t.Fatal("config built, want error")
			}
			if cfg != nil {
				t.Fatal("config returned alongside an error")
			}
		})
	}
}

// A peer certificate that chains to the root but names no valid node must
// fail the server handshake, not reach a handler.
func TestServerRefusesChainedCertWithoutIdentity(t *testing.T) {
	root := newTestRoot(t, testCluster)
	manager := issue(t, root, "manager-1", RoleManager)
	crafted := craftCert(t, root, func(c *x509.Certificate) { c.Subject.OrganizationalUnit = nil })

	cfg := serverConfig(t, manager, root)
	err := cfg.VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{crafted}})
	if err == nil || !strings.Contains(err.Error(), "no role") {
		t.Fatalf("VerifyConnection error = %v, want a no-role error", err)
	}
	if err := cfg.VerifyConnection(tls.ConnectionState{}); err != nil {
		t.Fatalf("VerifyConnection without a client certificate: %v (joining nodes have none)", err)
	}
}
