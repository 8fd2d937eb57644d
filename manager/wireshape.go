package manager

import (
	"sync/atomic"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/ca"
)

// Docker's answers carry "Labels": {} where no label is set, never null;
// clients add a label to the spec they read back (spec.Labels[k] = v) and
// a null map breaks them. Applied where state becomes a wire object.
func wireLabels(l map[string]string) map[string]string {
	if l == nil {
		return map[string]string{}
	}
	return l
}

// clusterTLSInfo is the swarm's trust root as Docker shows it, on the
// swarm and on every node (each node's certificate is issued by the root):
// the PEM, and the issuer's subject and public key (DER; base64 in JSON),
// which `docker node ls`'s TLS status compares.
//
// Only the certificate is parsed, once per root: every node and swarm read
// shows it, and the root changes only on a rotation, which the key (the
// stored PEM) catches. Callers share the slices and must not modify them.
func clusterTLSInfo(c *state.Cluster) swarm.TLSInfo {
	if e := lastTLSInfo.Load(); e != nil && e.certPEM == string(c.RootCACertPEM) {
		return e.info
	}
	info := swarm.TLSInfo{TrustRoot: string(c.RootCACertPEM)}
	if rc, err := ca.ParseRootCA(c.RootCACertPEM, nil); err == nil {
		info.CertIssuerSubject = rc.Cert.RawSubject
		info.CertIssuerPublicKey = rc.Cert.RawSubjectPublicKeyInfo
	}
	lastTLSInfo.Store(&tlsInfoEntry{certPEM: info.TrustRoot, info: info})
	return info
}

// lastTLSInfo is the TLS info of the last root clusterTLSInfo saw.
var lastTLSInfo atomic.Pointer[tlsInfoEntry]

type tlsInfoEntry struct {
	certPEM string
	info    swarm.TLSInfo
}
