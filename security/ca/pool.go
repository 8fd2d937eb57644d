package ca

import (
	"crypto/x509"
	"fmt"
	"os"
)

// LoadPool reads a PEM file of CA certificates (e.g. --tlscacert) into a
// pool. Its errors name the file and say what is wrong with it.
func LoadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA certificate file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA certificate file %s holds no usable certificate: want one or more PEM blocks of type %s", path, pemCertificate)
	}
	return pool, nil
}
