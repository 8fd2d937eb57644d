package testcluster_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/flotilla-org/flotilla/internal/testcluster"
)

// checkWireShape reads raw JSON answers (not through the client library,
// which would hide null vs {}) and checks the shapes Docker's answers have
// that clients rely on: "Labels": {} where no label is set, and the trust
// root's issuer on the swarm and on every node.
func checkWireShape(t *testing.T, via *testcluster.Node, serviceID string) {
	t.Helper()
	get := func(path string) map[string]any {
		t.Helper()
		code, body := rawRequest(t, via, http.MethodGet, path, "")
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
		return v
	}
	labelsIsObject := func(what string, spec any) {
		t.Helper()
		m, _ := spec.(map[string]any)
		if _, ok := m["Labels"].(map[string]any); !ok {
			t.Errorf("%s: Spec.Labels is %#v, want {} as Docker answers", what, m["Labels"])
		}
	}
	issuer := func(what string, tls any) {
		t.Helper()
		m, _ := tls.(map[string]any)
		for _, k := range []string{"TrustRoot", "CertIssuerSubject", "CertIssuerPublicKey"} {
			if s, _ := m[k].(string); s == "" {
				t.Errorf("%s: TLSInfo.%s is missing (%v)", what, k, m)
			}
		}
	}
	sw := get("/v1.47/swarm")
	labelsIsObject("swarm", sw["Spec"])
	issuer("swarm", sw["TLSInfo"])
	node := get("/v1.47/nodes/" + via.ID)
	labelsIsObject("node", node["Spec"])
	desc, _ := node["Description"].(map[string]any)
	issuer("node", desc["TLSInfo"])
	svc := get("/v1.47/services/" + serviceID)
	labelsIsObject("service", svc["Spec"])
	if _, ok := svc["ServiceStatus"]; ok {
		t.Error("service inspect carries ServiceStatus; Docker answers it only in a list with status=true")
	}
	spec, _ := sw["Spec"].(map[string]any)
	raft, _ := spec["Raft"].(map[string]any)
	if _, ok := raft["KeepOldSnapshots"].(float64); !ok {
		t.Errorf("swarm Spec.Raft.KeepOldSnapshots is %v, want a number as Docker answers", raft["KeepOldSnapshots"])
	}
}
