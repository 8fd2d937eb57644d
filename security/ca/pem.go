package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"    // PKCS #8, what this package writes
	pemECKey       = "EC PRIVATE KEY" // SEC 1, accepted for keys made by openssl
	pemCSR         = "CERTIFICATE REQUEST"
)

// newKey makes an ECDSA P-256 key and its PKCS #8 PEM encoding.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// parseKeyPEM decodes a single PKCS #8 or SEC 1 private key.
func parseKeyPEM(keyPEM []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block found in private key")
	}
	if b, _ := pem.Decode(rest); b != nil {
		return nil, errors.New("private key PEM holds more than one block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemECKey:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("private key PEM block has type %q, want %q or %q", block.Type, pemPrivateKey, pemECKey)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return signer, nil
}

// parseOneCertPEM decodes a PEM that must hold exactly one certificate.
// More than one is refused rather than ignored: the root's digest is taken
// over a single certificate, and silently picking one of several would
// make what is trusted depend on file order.
func parseOneCertPEM(certPEM []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(certPEM)
	if block == nil {
		return nil, errors.New("no PEM block found in certificate")
	}
	if block.Type != pemCertificate {
		return nil, fmt.Errorf("certificate PEM block has type %q, want %q", block.Type, pemCertificate)
	}
	if b, _ := pem.Decode(rest); b != nil {
		return nil, errors.New("certificate PEM holds more than one block, want exactly one certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// newSerial returns a random positive 128-bit serial number. Random serials
// mean two CAs or two restarts never hand out the same serial, and they
// give the unpredictability RFC 5280 and the CA/B forum ask for.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 { // zero is not a valid serial
			return n, nil
		}
	}
}

// samePublicKey reports whether the signer belongs to the certificate.
func samePublicKey(signer crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}
