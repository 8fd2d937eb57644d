package manager

import (
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
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
func clusterTLSInfo(c *state.Cluster) swarm.TLSInfo {
	info := swarm.TLSInfo{TrustRoot: string(c.RootCACertPEM)}
	if rc, err := rootOf(c); err == nil {
		info.CertIssuerSubject = rc.Cert.RawSubject
		info.CertIssuerPublicKey = rc.Cert.RawSubjectPublicKeyInfo
	}
	return info
}
