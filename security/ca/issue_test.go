package ca

import (
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssueNodeCert(t *testing.T) {
	r := newTestRoot(t, testCluster)
	_, csr, err := NewKeyAndCSR("requested-name") // the CA must ignore this
	if err != nil {
		t.Fatal(err)
	}
	extra := []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("fd00::5"), net.ParseIP("127.0.0.1")}
	certPEM, err := r.IssueNodeCert(csr, "node-a", RoleManager, testCluster, extra, 48*time.Hour)
	if err != nil {
		t.Fatalf("IssueNodeCert: %v", err)
	}
	cert, err := parseOneCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}

	id, err := r.VerifyPeer([]*x509.Certificate{cert})
	if err != nil {
		t.Fatalf("VerifyPeer: %v", err)
	}
	want := Identity{NodeID: "node-a", Role: RoleManager, ClusterID: testCluster, Serial: cert.SerialNumber.Text(16), NotAfter: cert.NotAfter}
	if id != want {
		t.Errorf("identity = %+v, want %+v", id, want)
	}
	if cert.Subject.OrganizationalUnit[0] != ouManager {
		t.Errorf("OU = %v, want %s", cert.Subject.OrganizationalUnit, ouManager)
	}
	if cert.IsCA {
		t.Error("node certificate is a CA")
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("ExtKeyUsage = %v, want server and client auth", cert.ExtKeyUsage)
	}
	if !slices.Equal(cert.DNSNames, []string{"localhost", "node-a"}) {
		t.Errorf("DNSNames = %v", cert.DNSNames)
	}
	var ips []string
	for _, ip := range cert.IPAddresses {
		ips = append(ips, ip.String())
	}
	if wantIPs := []string{"127.0.0.1", "::1", "10.0.0.5", "fd00::5"}; !slices.Equal(ips, wantIPs) {
		t.Errorf("IPAddresses = %v, want %v (loopback first, duplicates dropped)", ips, wantIPs)
	}
	if life := time.Until(cert.NotAfter); life < 47*time.Hour || life > 48*time.Hour {
		t.Errorf("certificate valid for %v more, want about 48h", life)
	}
	if time.Until(cert.NotBefore) > 0 {
		t.Error("certificate is not valid yet")
	}
}

func TestIssueNodeCertValidity(t *testing.T) {
	r := newTestRoot(t, testCluster)
	tests := []struct {
		name     string
		validity time.Duration
		want     time.Duration
	}{
		{"zero means 90 days", 0, 90 * 24 * time.Hour},
		{"explicit", time.Hour, time.Hour},
		{"capped at the root's expiry", 30 * 365 * 24 * time.Hour, time.Until(r.Cert.NotAfter)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := issueAt(t, r, time.Now(), "node-a", RoleWorker, tt.validity)
			got := time.Until(n.cert.NotAfter)
			// Certificate times have one-second resolution.
			if got > tt.want || got < tt.want-5*time.Second {
				t.Fatalf("valid for %v more, want about %v", got, tt.want)
			}
		})
	}
}

func TestIssueNodeCertErrors(t *testing.T) {
	r := newTestRoot(t, testCluster)
	_, csr, err := NewKeyAndCSR("node-a")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		csr       []byte
		nodeID    string
		role      string
		clusterID string
		ips       []net.IP
		validity  time.Duration
		wantErr   string
	}{
		{"bad role", csr, "node-a", "admin", testCluster, nil, 0, `unknown role "admin"`},
		{"OU instead of role", csr, "node-a", ouWorker, testCluster, nil, 0, "unknown role"},
		{"empty role", csr, "node-a", "", testCluster, nil, 0, "unknown role"},
		{"empty node ID", csr, "", RoleWorker, testCluster, nil, 0, "node ID is empty"},
		{"node ID with slash", csr, "a/b", RoleWorker, testCluster, nil, 0, "node ID"},
		{"empty cluster ID", csr, "node-a", RoleWorker, "", nil, 0, "cluster ID is empty"},
		{"other cluster", csr, "node-a", RoleWorker, "cluster-2", nil, 0, "does not match the root CA's cluster"},
		{"negative validity", csr, "node-a", RoleWorker, testCluster, nil, -time.Second, "negative validity"},
		{"malformed IP", csr, "node-a", RoleWorker, testCluster, []net.IP{{1, 2, 3}}, 0, "invalid IP"},
		{"nil IP", csr, "node-a", RoleWorker, testCluster, []net.IP{nil}, 0, "invalid IP"},
		{"no CSR", nil, "node-a", RoleWorker, testCluster, nil, 0, "no PEM block"},
		{"garbage CSR", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), "node-a", RoleWorker, testCluster, nil, 0, "parse CSR"},
		{"tampered CSR", tamperedCSR(t, csr), "node-a", RoleWorker, testCluster, nil, 0, "signature is invalid"},
		{"certificate instead of CSR", r.CertPEM, "node-a", RoleWorker, testCluster, nil, 0, `type "CERTIFICATE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.IssueNodeCert(tt.csr, tt.nodeID, tt.role, tt.clusterID, tt.ips, tt.validity)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("IssueNodeCert error = %v, want one containing %q", err, tt.wantErr)
			}
			if got != nil {
				t.Fatal("IssueNodeCert returned a certificate alongside an error")
			}
		})
	}
}
