package daemon

import (
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/security/ca"
)

// tlsState holds the node's current certificate. It changes on promote
// and demote; every config built here reads the current one at handshake.
type tlsState struct {
	mu     sync.RWMutex
	files  certFiles
	root   *ca.RootCA
	id     ca.Identity
	server *tls.Config
	client map[string]*tls.Config
	gen    atomic.Uint64
}

func newTLSState(c certFiles) (*tlsState, error) {
	t := &tlsState{}
	return t, t.set(c)
}

func (t *tlsState) set(c certFiles) error {
	root, err := ca.ParseRootCA(c.ca, nil)
	if err != nil {
		return fmt.Errorf("root CA: %w", err)
	}
	server, err := ca.ServerTLSConfig(c.cert, c.key, root, clusterport.ServerProtos())
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	client := map[string]*tls.Config{}
	for _, p := range []string{clusterport.ProtoRaft, clusterport.ProtoRPC, clusterport.ProtoMesh} {
		if client[p], err = ca.ClientTLSConfig(c.cert, c.key, root, p); err != nil {
			return fmt.Errorf("node certificate: %w", err)
		}
		if p == clusterport.ProtoRPC {
			client[p].NextProtos = clusterport.RPCClientProtos()
		}
	}
	if len(server.Certificates) == 0 || server.Certificates[0].Leaf == nil {
		return fmt.Errorf("node certificate: no leaf certificate")
	}
	id, err := ca.IdentityOf(server.Certificates[0].Leaf)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.files, t.root, t.id, t.server, t.client = c, root, id, server, client
	t.mu.Unlock()
	t.gen.Add(1)
	return nil
}

func (t *tlsState) rootCA() *ca.RootCA {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.root
}

func (t *tlsState) certs() certFiles {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.files
}

// serverConfig is handed to the cluster port once; it defers to whatever
// certificate is current when each peer connects.
func (t *tlsState) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: clusterport.ServerProtos(),
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			t.mu.RLock()
			defer t.mu.RUnlock()
			return t.server, nil
		},
	}
}

func (t *tlsState) clientConfig(proto string) *tls.Config {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.client[proto]
}

func (t *tlsState) generation() uint64 { return t.gen.Load() }
