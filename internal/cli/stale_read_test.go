package cli_test

import (
	"net/http"
	"strings"
	"testing"
)

// staleAPI answers like newClusterAPI, marking every answer as read from a
// manager without quorum.
func staleAPI(t *testing.T) *fakeAPI {
	f := newFakeAPI(t)
	stale := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Flotilla-Stale-Read", "answered by this manager's replica without a confirmed leader")
			writeJSON(w, http.StatusOK, v)
		}
	}
	f.handle("GET /nodes", stale(clusterNodes()))
	f.handle("GET /info", stale(managerInfo()))
	return f
}

func TestStaleReadWarnsOncePerCommand(t *testing.T) {
	f := staleAPI(t)
	r := mustRun(t, f.host, "node", "ls")
	if n := len(f.requests()); n < 2 {
		t.Fatalf("node ls made %d requests; the test needs several stale answers", n)
	}
	if got := strings.Count(r.stderr, "warning: this manager cannot reach a quorum of managers"); got != 1 {
		t.Errorf("stderr has the stale-read warning %d times, want once:\n%s", got, r.stderr)
	}
	if !strings.Contains(r.stderr, "start the stopped managers") || !strings.Contains(r.stderr, "--force-new-cluster") {
		t.Errorf("the warning does not say how to restore quorum:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "manager-1") || strings.Contains(r.stdout, "warning") {
		t.Errorf("stdout should hold the node table only:\n%s", r.stdout)
	}

	// Each command run warns again.
	r = mustRun(t, f.host, "info")
	if got := strings.Count(r.stderr, "cannot reach a quorum"); got != 1 {
		t.Errorf("info: stale-read warning %d times on stderr, want once:\n%s", got, r.stderr)
	}
}

func TestNoStaleReadWarningWithoutHeader(t *testing.T) {
	f := newClusterAPI(t)
	r := mustRun(t, f.host, "node", "ls")
	if r.stderr != "" {
		t.Errorf("stderr without a stale mark: %q", r.stderr)
	}
}
