package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

const testCluster = "cluster-1"

func newTestRoot(t *testing.T, clusterID string) *RootCA {
	t.Helper()
	r, err := NewRootCA(clusterID)
	if err != nil {
		t.Fatalf("NewRootCA(%q): %v", clusterID, err)
	}
	return r
}

// testNode is a node's key and certificate as PEM, plus the parsed leaf.
type testNode struct {
	certPEM, keyPEM []byte
	cert            *x509.Certificate
}

// issueAt issues a node certificate as if the clock read now.
func issueAt(t *testing.T, r *RootCA, now time.Time, nodeID, role string, validity time.Duration) testNode {
	t.Helper()
	keyPEM, csrPEM, err := NewKeyAndCSR(nodeID)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	certPEM, err := r.issueNodeCert(now, csrPEM, nodeID, role, r.clusterID(), nil, validity)
	if err != nil {
		t.Fatalf("issueNodeCert: %v", err)
	}
	cert, err := parseOneCertPEM(certPEM)
	if err != nil {
		t.Fatalf("parse issued certificate: %v", err)
	}
	return testNode{certPEM: certPEM, keyPEM: keyPEM, cert: cert}
}

func issue(t *testing.T, r *RootCA, nodeID, role string) testNode {
	t.Helper()
	return issueAt(t, r, time.Now(), nodeID, role, 0)
}

// craftCert signs, with r's key, a certificate the public API would never
// issue: edit changes a valid node template first. It is how tests get
// certificates with missing or wrong identity fields.
func craftCert(t *testing.T, r *RootCA, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject: pkix.Name{
			CommonName:         "crafted",
			OrganizationalUnit: []string{ouWorker},
			Organization:       []string{r.clusterID()},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.Cert, key.Public(), r.Key)
	if err != nil {
		t.Fatalf("craft certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
