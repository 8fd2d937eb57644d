package ca

import (
	"bytes"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-org/flotilla/security/jointoken"
)

func TestNewRootCA(t *testing.T) {
	r := newTestRoot(t, testCluster)
	c := r.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Error("root is not marked as a CA")
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("root lacks the certSign key usage")
	}
	if c.Subject.Organization[0] != testCluster {
		t.Errorf("root Organization = %v, want [%s]", c.Subject.Organization, testCluster)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("root key algorithm = %v, want ECDSA", c.PublicKeyAlgorithm)
	}
	life := time.Until(c.NotAfter)
	if min := 20*365*24*time.Hour - 48*time.Hour; life < min || life > 20*366*24*time.Hour {
		t.Errorf("root valid for %v more, want about 20 years", life)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if r.Key == nil || len(r.KeyPEM) == 0 || len(r.CertPEM) == 0 {
		t.Error("root is missing its key or PEM encodings")
	}
}

func TestNewRootCARejectsBadClusterID(t *testing.T) {
	for _, id := range []string{"", "has space", strings.Repeat("a", 65), "ünicode"} {
		if _, err := NewRootCA(id); err == nil {
			t.Errorf("NewRootCA(%q) succeeded, want error", id)
		}
	}
}

func TestParseRootCARoundTrip(t *testing.T) {
	r := newTestRoot(t, testCluster)
	got, err := ParseRootCA(r.CertPEM, r.KeyPEM)
	if err != nil {
		t.Fatalf("ParseRootCA: %v", err)
	}
	if !got.Cert.Equal(r.Cert) {
		t.Error("parsed certificate differs from the original")
	}
	if !samePublicKey(got.Key, r.Cert) {
		t.Error("parsed key does not match the certificate")
	}
	if got.Digest() != r.Digest() {
		t.Error("digest changed across a round trip")
	}
	// The parsed root must still be able to sign, and what it signs must
	// verify under the original.
	n := issue(t, got, "node-a", RoleWorker)
	if _, err := r.VerifyPeer([]*x509.Certificate{n.cert}); err != nil {
		t.Errorf("certificate from parsed root does not verify: %v", err)
	}
}

func TestParseRootCAVerifyOnly(t *testing.T) {
	r := newTestRoot(t, testCluster)
	for name, key := range map[string][]byte{"nil key": nil, "empty key": {}} {
		t.Run(name, func(t *testing.T) {
			v, err := ParseRootCA(r.CertPEM, key)
			if err != nil {
				t.Fatalf("ParseRootCA: %v", err)
			}
			if v.Key != nil || v.KeyPEM != nil {
				t.Fatal("verify-only root has a key")
			}
			_, csr, err := NewKeyAndCSR("node-a")
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.IssueNodeCert(csr, "node-a", RoleWorker, testCluster, nil, 0)
			if err == nil || !strings.Contains(err.Error(), "no private key") {
				t.Fatalf("IssueNodeCert on a verify-only root: err = %v, want no-private-key error", err)
			}
			n := issue(t, r, "node-a", RoleWorker)
			if _, err := v.VerifyPeer([]*x509.Certificate{n.cert}); err != nil {
				t.Fatalf("verify-only root cannot verify: %v", err)
			}
		})
	}
}

func TestParseRootCAErrors(t *testing.T) {
	r := newTestRoot(t, testCluster)
	other := newTestRoot(t, testCluster)
	node := issue(t, r, "node-a", RoleWorker)

	tests := []struct {
		name          string
		certPEM, key  []byte
		wantErrSubstr string
	}{
		{"empty cert", nil, nil, "no PEM block"},
		{"garbage cert", []byte("not pem"), nil, "no PEM block"},
		{"key as cert", r.KeyPEM, nil, `type "PRIVATE KEY"`},
		{"two certs", append(append([]byte{}, r.CertPEM...), other.CertPEM...), nil, "more than one"},
		{"corrupt DER", corruptPEM(r.CertPEM), nil, "parse certificate"},
		{"node cert is not a CA", node.certPEM, nil, "not a CA"},
		{"key of another root", r.CertPEM, other.KeyPEM, "does not belong"},
		{"node key", r.CertPEM, node.keyPEM, "does not belong"},
		{"garbage key", r.CertPEM, []byte("nope"), "no PEM block"},
		{"cert as key", r.CertPEM, r.CertPEM, `type "CERTIFICATE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRootCA(tt.certPEM, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantErrSubstr) {
				t.Fatalf("ParseRootCA error = %v, want one containing %q", err, tt.wantErrSubstr)
			}
		})
	}
}

// corruptPEM keeps the PEM framing but truncates the DER inside it.
func corruptPEM(p []byte) []byte {
	lines := bytes.Split(p, []byte("\n"))
	// Drop the last two base64 lines before the END line.
	return bytes.Join(append(lines[:len(lines)-4], lines[len(lines)-2:]...), []byte("\n"))
}

func TestRootDigestMatchesJoinToken(t *testing.T) {
	r := newTestRoot(t, testCluster)
	tok, err := jointoken.Generate(r.Cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jointoken.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Digest != r.Digest() {
		t.Fatalf("token digest %s != root digest %s", parsed.Digest, r.Digest())
	}
	// What a joining node does with a root downloaded over an untrusted
	// connection: accept it only if it matches the token.
	fetched, err := ParseRootCA(r.CertPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.MatchesCA(fetched.Cert.Raw) {
		t.Fatal("token does not match the genuine root")
	}
	impostor := newTestRoot(t, testCluster)
	if impostor.Digest() == r.Digest() || parsed.MatchesCA(impostor.Cert.Raw) {
		t.Fatal("token matches an impostor root with the same cluster ID")
	}
}

func TestPoolIsIndependent(t *testing.T) {
	r := newTestRoot(t, testCluster)
	p := r.Pool()
	p.AddCert(newTestRoot(t, "other").Cert)
	if r.Pool().Equal(p) {
		t.Fatal("adding to one pool changed the next one")
	}
}
