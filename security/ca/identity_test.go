package ca

import (
	"crypto/x509"
	"strings"
	"testing"
)

func TestIdentityOf(t *testing.T) {
	r := newTestRoot(t, testCluster)
	worker := issue(t, r, "node-w", RoleWorker)
	id, err := IdentityOf(worker.cert)
	if err != nil {
		t.Fatal(err)
	}
	if id.NodeID != "node-w" || id.Role != RoleWorker || id.ClusterID != testCluster {
		t.Errorf("IdentityOf = %+v", id)
	}
	if id.Serial != worker.cert.SerialNumber.Text(16) || !id.NotAfter.Equal(worker.cert.NotAfter) {
		t.Errorf("serial/expiry = %s/%v, want %x/%v", id.Serial, id.NotAfter, worker.cert.SerialNumber, worker.cert.NotAfter)
	}
}

func TestIdentityOfErrors(t *testing.T) {
	r := newTestRoot(t, testCluster)
	tests := []struct {
		name    string
		edit    func(*x509.Certificate)
		wantErr string
	}{
		{"no OU", func(c *x509.Certificate) { c.Subject.OrganizationalUnit = nil }, "no role"},
		{"unknown OU", func(c *x509.Certificate) { c.Subject.OrganizationalUnit = []string{"flotilla-admin"} }, "unknown role"},
		{"API role in OU", func(c *x509.Certificate) { c.Subject.OrganizationalUnit = []string{RoleManager} }, "unknown role"},
		{"no CN", func(c *x509.Certificate) { c.Subject.CommonName = "" }, "no node ID"},
		{"no O", func(c *x509.Certificate) { c.Subject.Organization = nil }, "no cluster ID"},
		{"empty O", func(c *x509.Certificate) { c.Subject.Organization = []string{""} }, "no cluster ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := IdentityOf(craftCert(t, r, tt.edit))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("IdentityOf error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("nil certificate", func(t *testing.T) {
		if _, err := IdentityOf(nil); err == nil {
			t.Fatal("IdentityOf(nil) succeeded")
		}
	})
	t.Run("root certificate", func(t *testing.T) {
		if _, err := IdentityOf(r.Cert); err == nil {
			t.Fatal("IdentityOf(root) succeeded")
		}
	})
}
