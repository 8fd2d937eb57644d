package manager

import (
	"bytes"
	"testing"

	"github.com/flotilla-org/flotilla/manager/state"
	"github.com/flotilla-org/flotilla/security/ca"
)

// The root's TLS info is parsed once per root, and a rotated root shows at
// once.
func TestClusterTLSInfoFollowsTheRoot(t *testing.T) {
	cluster := func(id string) (*state.Cluster, *ca.RootCA) {
		t.Helper()
		r, err := ca.NewRootCA(id)
		if err != nil {
			t.Fatal(err)
		}
		c := &state.Cluster{RootCACertPEM: r.CertPEM, RootCAKeyPEM: r.KeyPEM}
		return c, r
	}
	a, rootA := cluster("cluster-a")
	b, rootB := cluster("cluster-b")
	check := func(c *state.Cluster, r *ca.RootCA, name string) {
		t.Helper()
		info := clusterTLSInfo(c)
		if info.TrustRoot != string(r.CertPEM) || !bytes.Equal(info.CertIssuerSubject, r.Cert.RawSubject) ||
			!bytes.Equal(info.CertIssuerPublicKey, r.Cert.RawSubjectPublicKeyInfo) {
			t.Errorf("TLS info of root %s: %+v", name, info)
		}
	}
	check(a, rootA, "a")
	check(b, rootB, "b (rotated from a)")
	check(a, rootA, "a again")

	// A read of an unchanged root parses nothing (and so allocates
	// nothing): before, every read parsed the certificate and its key.
	if n := testing.AllocsPerRun(100, func() { clusterTLSInfo(a) }); n != 0 {
		t.Errorf("a read of an unchanged root allocates %.0f times, want 0 (parsed once)", n)
	}

	// The key plays no part in the answer.
	check(&state.Cluster{RootCACertPEM: rootB.CertPEM}, rootB, "b without its key")
}
