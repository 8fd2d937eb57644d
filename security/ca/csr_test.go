package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
)

func TestNewKeyAndCSR(t *testing.T) {
	keyPEM, csrPEM, err := NewKeyAndCSR("node-a")
	if err != nil {
		t.Fatal(err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		t.Fatalf("key does not parse: %v", err)
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		t.Fatalf("CSR does not parse: %v", err)
	}
	if csr.Subject.CommonName != "node-a" {
		t.Errorf("CSR CommonName = %q, want node-a", csr.Subject.CommonName)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || !pub.Equal(csr.PublicKey) {
		t.Error("CSR does not carry the returned key")
	}
}

func TestNewKeyAndCSRRejectsBadNodeID(t *testing.T) {
	for _, id := range []string{"", "a b", "a/b", strings.Repeat("n", 65)} {
		if _, _, err := NewKeyAndCSR(id); err == nil {
			t.Errorf("NewKeyAndCSR(%q) succeeded, want error", id)
		}
	}
}

func TestParseCSRErrors(t *testing.T) {
	_, good, err := NewKeyAndCSR("node-a")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		csrPEM  []byte
		wantErr string
	}{
		{"nil", nil, "no PEM block"},
		{"not PEM", []byte("hello"), "no PEM block"},
		{"wrong block type", pemBlock("CERTIFICATE", csrDER(t, good)), `type "CERTIFICATE"`},
		{"two blocks", append(append([]byte{}, good...), good...), "more than one"},
		{"garbage DER", pemBlock(pemCSR, []byte{0x30, 0x03, 0x01, 0x02, 0x03}), "parse CSR"},
		{"bad signature", tamperedCSR(t, good), "signature is invalid"},
		{"RSA key", rsaCSR(t), "want ECDSA P-256"},
		{"P-384 key", p384CSR(t), "want P-256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCSR(tt.csrPEM)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parseCSR error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func csrDER(t *testing.T, csrPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(csrPEM)
	if b == nil {
		t.Fatal("test CSR is not PEM")
	}
	return b.Bytes
}

// tamperedCSR flips the last byte of the CSR, which lies in the signature's
// S value: the DER still parses but the signature no longer verifies.
func tamperedCSR(t *testing.T, csrPEM []byte) []byte {
	t.Helper()
	der := append([]byte{}, csrDER(t, csrPEM)...)
	der[len(der)-1] ^= 0xff
	return pemBlock(pemCSR, der)
}

func csrWithKey(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock(pemCSR, der)
}

func rsaCSR(t *testing.T) []byte {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return csrWithKey(t, key)
}

func p384CSR(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return csrWithKey(t, key)
}
