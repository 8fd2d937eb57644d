package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-org/flotilla/security/jointoken"
)

const (
	rootCommonName = "flotilla-root-ca"
	rootValidYears = 20

	// backdate is subtracted from NotBefore of every certificate so that a
	// node whose clock is a little behind the issuer's still accepts a
	// freshly issued certificate.
	backdate = time.Hour
)

// RootCA is the cluster's root certificate and, on managers, its key.
type RootCA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     crypto.Signer // nil for a verify-only CA
	KeyPEM  []byte        // nil for a verify-only CA
}

// NewRootCA creates a self-signed root for the cluster clusterID.
func NewRootCA(clusterID string) (*RootCA, error) {
	if err := checkName("cluster ID", clusterID); err != nil {
		return nil, fmt.Errorf("new root CA: %w", err)
	}
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("new root CA: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("new root CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   rootCommonName,
			Organization: []string{clusterID},
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(rootValidYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The root signs node certificates directly; forbidding
		// intermediates means a leaked node key can never mint others.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("new root CA: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new root CA: parse certificate: %w", err)
	}
	return &RootCA{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der}),
		Key:     key,
		KeyPEM:  keyPEM,
	}, nil
}

// ParseRootCA loads a root from PEM. keyPEM may be nil, giving a
// verify-only CA: workers hold the root certificate but never its key.
func ParseRootCA(certPEM, keyPEM []byte) (*RootCA, error) {
	cert, err := parseOneCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("parse root CA: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, errors.New("parse root CA: certificate is not a CA certificate")
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("parse root CA: certificate is not self-signed: %w", err)
	}
	r := &RootCA{Cert: cert, CertPEM: certPEM}
	if len(keyPEM) == 0 {
		return r, nil
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse root CA: %w", err)
	}
	if !samePublicKey(key, cert) {
		return nil, errors.New("parse root CA: private key does not belong to the certificate")
	}
	r.Key, r.KeyPEM = key, keyPEM
	return r, nil
}

// Pool returns a new pool holding only the root. A fresh pool each call
// means a caller that adds to it cannot widen what other callers trust.
func (r *RootCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(r.Cert)
	return p
}

// Digest is the root's digest as carried in join tokens.
func (r *RootCA) Digest() string {
	return jointoken.Digest(r.Cert.Raw)
}

// clusterID is the cluster named in the root's subject, or "" for a root
// that does not name one (e.g. one imported from elsewhere).
func (r *RootCA) clusterID() string {
	if len(r.Cert.Subject.Organization) == 0 {
		return ""
	}
	return r.Cert.Subject.Organization[0]
}
