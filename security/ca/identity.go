package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Identity is who a node certificate says its holder is.
type Identity struct {
	NodeID    string
	Role      string // RoleManager or RoleWorker
	ClusterID string
	Serial    string // certificate serial number, lowercase hex
	NotAfter  time.Time
}

// IdentityOf reads the identity from a node certificate. It does not
// verify the certificate; use RootCA.VerifyPeer for anything received from
// the network.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, errors.New("certificate identity: no certificate")
	}
	s := cert.Subject
	if s.CommonName == "" {
		return Identity{}, errors.New("certificate identity: no node ID (subject CommonName is empty)")
	}
	if len(s.OrganizationalUnit) == 0 {
		return Identity{}, errors.New("certificate identity: no role (subject OrganizationalUnit is missing)")
	}
	role, err := ouToRole(s.OrganizationalUnit[0])
	if err != nil {
		return Identity{}, fmt.Errorf("certificate identity: %w", err)
	}
	if len(s.Organization) == 0 || s.Organization[0] == "" {
		return Identity{}, errors.New("certificate identity: no cluster ID (subject Organization is missing)")
	}
	return Identity{
		NodeID:    s.CommonName,
		Role:      role,
		ClusterID: s.Organization[0],
		Serial:    cert.SerialNumber.Text(16),
		NotAfter:  cert.NotAfter,
	}, nil
}
