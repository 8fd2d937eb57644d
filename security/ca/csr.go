package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
)

// NewKeyAndCSR makes a node key and a certificate signing request for it.
// The key never leaves the node; only the CSR is sent to a manager. The
// CSR's subject is informational: the CA decides the identity it signs.
func NewKeyAndCSR(nodeID string) (keyPEM, csrPEM []byte, err error) {
	if err := checkName("node ID", nodeID); err != nil {
		return nil, nil, fmt.Errorf("new CSR: %w", err)
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("new CSR: %w", err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: nodeID}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("new CSR: %w", err)
	}
	return keyPEM, pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), nil
}

// parseCSR decodes a CSR and checks it was signed by the key it carries,
// which proves the requester holds that key. Only ECDSA P-256 keys are
// accepted so every certificate in the cluster has the same strength.
func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, rest := pem.Decode(csrPEM)
	if block == nil {
		return nil, errors.New("no PEM block found in CSR")
	}
	if block.Type != pemCSR {
		return nil, fmt.Errorf("CSR PEM block has type %q, want %q", block.Type, pemCSR)
	}
	if b, _ := pem.Decode(rest); b != nil {
		return nil, errors.New("CSR PEM holds more than one block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature is invalid: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("CSR key is %T, want ECDSA P-256", csr.PublicKey)
	}
	if pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("CSR key uses curve %s, want P-256", pub.Curve.Params().Name)
	}
	return csr, nil
}
