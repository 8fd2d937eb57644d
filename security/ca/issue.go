package ca

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"time"
)

// DefaultNodeCertValidity is used when IssueNodeCert is given a zero
// validity. Short enough that a stolen certificate expires on its own,
// long enough that renewal is routine rather than urgent.
const DefaultNodeCertValidity = 90 * 24 * time.Hour

// IssueNodeCert signs a node certificate for the key in csrPEM. The
// identity (node ID, role, cluster) comes from the arguments, not from the
// CSR, whose subject is ignored: a node must not pick its own identity.
// ips are added to the loopback IP SANs; validity 0 means
// DefaultNodeCertValidity.
func (r *RootCA) IssueNodeCert(csrPEM []byte, nodeID, role, clusterID string, ips []net.IP, validity time.Duration) (certPEM []byte, err error) {
	return r.issueNodeCert(time.Now(), csrPEM, nodeID, role, clusterID, ips, validity)
}

// issueNodeCert is IssueNodeCert with the clock passed in, so tests can
// make certificates that are already expired or not yet valid.
func (r *RootCA) issueNodeCert(now time.Time, csrPEM []byte, nodeID, role, clusterID string, ips []net.IP, validity time.Duration) ([]byte, error) {
	if r.Key == nil {
		return nil, fmt.Errorf("issue node certificate: %w", errNoSigningKey)
	}
	ou, err := roleToOU(role)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: %w", err)
	}
	if err := checkName("node ID", nodeID); err != nil {
		return nil, fmt.Errorf("issue node certificate: %w", err)
	}
	if err := checkName("cluster ID", clusterID); err != nil {
		return nil, fmt.Errorf("issue node certificate: %w", err)
	}
	// A certificate naming another cluster would still chain to this root;
	// refusing it here keeps "signed by our root" and "member of our
	// cluster" the same thing.
	if own := r.clusterID(); own != "" && own != clusterID {
		return nil, fmt.Errorf("issue node certificate: cluster ID %q does not match the root CA's cluster %q", clusterID, own)
	}
	switch {
	case validity < 0:
		return nil, fmt.Errorf("issue node certificate: negative validity %v", validity)
	case validity == 0:
		validity = DefaultNodeCertValidity
	}
	sanIPs, err := nodeIPs(ips)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: %w", err)
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: %w", err)
	}

	notAfter := now.Add(validity)
	// A node certificate cannot be valid past its root; saying otherwise
	// would only mislead renewal logic that looks at NotAfter.
	if notAfter.After(r.Cert.NotAfter) {
		notAfter = r.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         nodeID,
			OrganizationalUnit: []string{ou},
			Organization:       []string{clusterID},
		},
		NotBefore: now.Add(-backdate),
		NotAfter:  notAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature,
		// Every node is both a TLS server and a TLS client to its peers.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		// Peers do not check these (they verify by CA and identity), but
		// ordinary tools such as curl do, so the names a node can be
		// reached by are listed.
		DNSNames:    nodeDNSNames(nodeID),
		IPAddresses: sanIPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.Cert, csr.PublicKey, r.Key)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: sign: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}), nil
}

func nodeDNSNames(nodeID string) []string {
	if nodeID == "localhost" {
		return []string{"localhost"}
	}
	return []string{"localhost", nodeID}
}

// nodeIPs returns the loopback addresses plus extra, without duplicates.
// A nil or malformed IP is an error rather than skipped: it usually means
// an address failed to parse upstream, which the caller should hear about.
func nodeIPs(extra []net.IP) ([]net.IP, error) {
	out := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	for _, ip := range extra {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, fmt.Errorf("invalid IP address %v (length %d)", ip, len(ip))
		}
		if v4 := ip.To4(); v4 != nil {
			ip = v4 // store the 4-byte form so the SAN is an IPv4 address
		}
		dup := false
		for _, have := range out {
			if have.Equal(ip) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, ip)
		}
	}
	return out, nil
}
