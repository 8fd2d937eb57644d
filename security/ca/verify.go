package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// VerifyPeer checks a peer's certificate chain (leaf first, as in
// tls.ConnectionState.PeerCertificates) against the root and returns the
// leaf's identity. No hostname is checked: nodes are reached by IP:port,
// and who they are is the identity in the certificate.
func (r *RootCA) VerifyPeer(certs []*x509.Certificate) (Identity, error) {
	return r.verifyPeerAt(time.Now(), certs)
}

// verifyPeerAt is VerifyPeer with the clock passed in, for tests.
func (r *RootCA) verifyPeerAt(now time.Time, certs []*x509.Certificate) (Identity, error) {
	if len(certs) == 0 || certs[0] == nil {
		return Identity{}, errors.New("verify peer: no certificate presented")
	}
	leaf := certs[0]
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		if c != nil {
			intermediates.AddCert(c)
		}
	}
	opts := x509.VerifyOptions{
		Roots:         r.Pool(),
		Intermediates: intermediates,
		CurrentTime:   now,
		// Any one of these is enough; node certificates carry both.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	if _, err := leaf.Verify(opts); err != nil {
		return Identity{}, fmt.Errorf("verify peer: %w", err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return Identity{}, fmt.Errorf("verify peer: %w", err)
	}
	// IssueNodeCert never signs for another cluster; this catches a root
	// that was reused across clusters or a certificate made by other means.
	if own := r.clusterID(); own != "" && id.ClusterID != own {
		return Identity{}, fmt.Errorf("verify peer: certificate is for cluster %q, not %q", id.ClusterID, own)
	}
	return id, nil
}
