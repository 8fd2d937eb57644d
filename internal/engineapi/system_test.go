package engineapi

import (
	"runtime"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

func TestPing(t *testing.T) {
	for _, tc := range []struct {
		info swarm.Info
		want string
	}{
		{swarm.Info{}, "inactive"},
		{swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}, "inactive"},
		{swarm.Info{LocalNodeState: swarm.LocalNodeStatePending}, "pending"},
		{swarm.Info{LocalNodeState: swarm.LocalNodeStateError}, "error"},
		{swarm.Info{LocalNodeState: swarm.LocalNodeStateLocked}, "locked"},
		{swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, ControlAvailable: true}, "active/manager"},
		{swarm.Info{LocalNodeState: swarm.LocalNodeStateActive}, "active/worker"},
	} {
		f := newInactiveBackend()
		f.info = tc.info
		h := NewHandler(f)
		for _, method := range []string{"GET", "HEAD"} {
			for _, path := range []string{"/_ping", "/v1.24/_ping", "/v1.47/_ping"} {
				rec := serve(t, h, method, path, "")
				wantStatus(t, rec, 200)
				wantBody := "OK"
				if method == "HEAD" {
					wantBody = ""
				}
				if rec.Body.String() != wantBody {
					t.Errorf("%s %s: body = %q, want %q", method, path, rec.Body.String(), wantBody)
				}
				for k, want := range map[string]string{
					"Swarm":               tc.want,
					"API-Version":         "1.47",
					"Docker-Experimental": "false",
					"Ostype":              "linux",
					"Cache-Control":       "no-cache, no-store, must-revalidate",
					"Pragma":              "no-cache",
					"Server":              "flotilla/0.1.0",
				} {
					if got := rec.Header().Get(k); got != want {
						t.Errorf("%s %s (%s): %s = %q, want %q", method, path, tc.want, k, got, want)
					}
				}
			}
		}
	}
}

func TestVersionEndpoint(t *testing.T) {
	for _, path := range []string{"/version", "/v1.24/version", "/v1.47/version"} {
		rec := serve(t, NewHandler(newInactiveBackend()), "GET", path, "")
		wantStatus(t, rec, 200)
		var v system.VersionResponse
		decodeJSON(t, rec, &v)
		if v.Platform.Name != "flotilla" || v.Version != Version || v.APIVersion != "1.47" || v.MinAPIVersion != "1.24" ||
			v.Os != runtime.GOOS || v.Arch != runtime.GOARCH || v.GoVersion != runtime.Version() {
			t.Errorf("%s: unexpected version %+v", path, v)
		}
		if len(v.Components) != 1 || v.Components[0].Name != "Engine" || v.Components[0].Version != Version ||
			v.Components[0].Details["ApiVersion"] != "1.47" || v.Components[0].Details["MinAPIVersion"] != "1.24" {
			t.Errorf("%s: unexpected components %+v", path, v.Components)
		}
	}
}

func TestVersionVariable(t *testing.T) {
	old := Version
	Version = "9.9.9-test"
	defer func() { Version = old }()
	rec := serve(t, NewHandler(newInactiveBackend()), "GET", "/version", "")
	var v system.VersionResponse
	decodeJSON(t, rec, &v)
	if v.Version != "9.9.9-test" || rec.Header().Get("Server") != "flotilla/9.9.9-test" {
		t.Errorf("Version not used: %q, Server %q", v.Version, rec.Header().Get("Server"))
	}
}

func TestInfo(t *testing.T) {
	t.Run("manager", func(t *testing.T) {
		f := newFakeCluster()
		f.info.Warnings = []string{"WARNING: only one manager"}
		rec := serve(t, NewHandler(f), "GET", "/v1.47/info", "")
		wantStatus(t, rec, 200)
		var info system.Info
		decodeJSON(t, rec, &info)
		if info.ID != idA || info.Name != "node-a" || info.OSType != "linux" || info.Driver != "flotilla" ||
			info.ServerVersion != Version || info.NCPU != runtime.NumCPU() || info.OperatingSystem == "" || info.Architecture == "" {
			t.Errorf("unexpected info %+v", info)
		}
		if runtime.GOOS == "linux" && info.MemTotal <= 0 {
			t.Errorf("MemTotal = %d", info.MemTotal)
		}
		sw := info.Swarm
		if sw.NodeID != idA || sw.LocalNodeState != swarm.LocalNodeStateActive || !sw.ControlAvailable ||
			sw.Nodes != 3 || sw.Managers != 1 || len(sw.RemoteManagers) != 1 || sw.Cluster == nil || sw.Cluster.ID != f.sw.ID ||
			*sw.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit != 5 {
			t.Errorf("unexpected swarm info %+v", sw)
		}
		if len(info.Warnings) != 1 || info.Warnings[0] != "WARNING: only one manager" {
			t.Errorf("Warnings = %q", info.Warnings)
		}
	})
	t.Run("outside a swarm", func(t *testing.T) {
		h := NewHandler(newInactiveBackend())
		var first, second system.Info
		decodeJSON(t, serve(t, h, "GET", "/info", ""), &first)
		decodeJSON(t, serve(t, h, "GET", "/info", ""), &second)
		if first.ID == "" || first.ID != second.ID {
			t.Errorf("ID placeholder %q / %q is not stable", first.ID, second.ID)
		}
		if first.Name != "lonely" || first.Swarm.LocalNodeState != swarm.LocalNodeStateInactive || first.Swarm.Cluster != nil {
			t.Errorf("unexpected info %+v", first)
		}
	})
}
