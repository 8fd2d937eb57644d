package ca

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestVerifyPeer(t *testing.T) {
	r := newTestRoot(t, testCluster)
	other := newTestRoot(t, testCluster) // same cluster name, different key
	now := time.Now()

	tests := []struct {
		name    string
		certs   func() []*x509.Certificate
		at      time.Time
		wantErr string // "" means success
	}{
		{"valid worker", func() []*x509.Certificate { return leaf(issue(t, r, "w1", RoleWorker)) }, now, ""},
		{"valid manager", func() []*x509.Certificate { return leaf(issue(t, r, "m1", RoleManager)) }, now, ""},
		{"extra certs after leaf ignored if unneeded", func() []*x509.Certificate {
			return append(leaf(issue(t, r, "w1", RoleWorker)), r.Cert)
		}, now, ""},
		{"no certificates", func() []*x509.Certificate { return nil }, now, "no certificate"},
		{"nil leaf", func() []*x509.Certificate { return []*x509.Certificate{nil} }, now, "no certificate"},
		{"other CA", func() []*x509.Certificate { return leaf(issue(t, other, "w1", RoleWorker)) }, now, "unknown authority"},
		{"other CA with its root appended", func() []*x509.Certificate {
			return append(leaf(issue(t, other, "w1", RoleWorker)), other.Cert)
		}, now, "unknown authority"},
		{"expired", func() []*x509.Certificate {
			return leaf(issueAt(t, r, now.Add(-48*time.Hour), "w1", RoleWorker, time.Hour))
		}, now, "expired"},
		{"checked at a later time", func() []*x509.Certificate {
			return leaf(issue(t, r, "w1", RoleWorker))
		}, now.Add(91 * 24 * time.Hour), "expired"},
		{"not yet valid", func() []*x509.Certificate {
			return leaf(issueAt(t, r, now.Add(48*time.Hour), "w1", RoleWorker, time.Hour))
		}, now, "not yet valid"},
		{"no auth key usage", func() []*x509.Certificate {
			return []*x509.Certificate{craftCert(t, r, func(c *x509.Certificate) {
				c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
			})}
		}, now, "incompatible key usage"},
		{"client auth only is enough", func() []*x509.Certificate {
			return []*x509.Certificate{craftCert(t, r, func(c *x509.Certificate) {
				c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			})}
		}, now, ""},
		{"signed by root but no role", func() []*x509.Certificate {
			return []*x509.Certificate{craftCert(t, r, func(c *x509.Certificate) { c.Subject.OrganizationalUnit = nil })}
		}, now, "no role"},
		{"signed by root but other cluster", func() []*x509.Certificate {
			return []*x509.Certificate{craftCert(t, r, func(c *x509.Certificate) { c.Subject.Organization = []string{"cluster-2"} })}
		}, now, `for cluster "cluster-2"`},
		{"root itself as leaf", func() []*x509.Certificate { return []*x509.Certificate{r.Cert} }, now, "no role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := r.verifyPeerAt(tt.at, tt.certs())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("verifyPeerAt: %v", err)
				}
				if id.NodeID == "" {
					t.Fatal("no identity returned")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("verifyPeerAt error = %v, want one containing %q", err, tt.wantErr)
			}
			if id != (Identity{}) {
				t.Fatalf("identity %+v returned alongside an error", id)
			}
		})
	}
}

// VerifyPeer itself (not only verifyPeerAt) must use the real clock.
func TestVerifyPeerUsesClock(t *testing.T) {
	r := newTestRoot(t, testCluster)
	expired := issueAt(t, r, time.Now().Add(-48*time.Hour), "w1", RoleWorker, time.Hour)
	if _, err := r.VerifyPeer(leaf(expired)); err == nil {
		t.Fatal("VerifyPeer accepted an expired certificate")
	}
}

func leaf(n testNode) []*x509.Certificate { return []*x509.Certificate{n.cert} }
