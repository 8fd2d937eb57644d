package engineapi

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

func TestSwarmInit(t *testing.T) {
	body := `{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"10.0.0.1","DataPathPort":4789,
		"DefaultAddrPool":["10.10.0.0/16"],"SubnetSize":24,"Spec":{"Name":"default"},"Availability":"drain",
		"SomeFutureField":{"x":1}}`
	for _, tc := range []struct {
		path                   string
		wantPool, wantPathPort bool
	}{
		{"/swarm/init", true, true},
		{"/v1.47/swarm/init", true, true},
		{"/v1.39/swarm/init", true, false},
		{"/v1.38/swarm/init", false, false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			f := newInactiveBackend()
			rec := serve(t, NewHandler(f), "POST", tc.path, body)
			wantStatus(t, rec, 200)
			var id string
			decodeJSON(t, rec, &id)
			if id != idA {
				t.Errorf("node ID = %q, want %q", id, idA)
			}
			inits := f.recorded().inits
			if len(inits) != 1 {
				t.Fatalf("SwarmInit called %d times", len(inits))
			}
			req := inits[0]
			if req.ListenAddr != "0.0.0.0:2377" || req.AdvertiseAddr != "10.0.0.1" || req.Spec.Name != "default" || req.Availability != swarm.NodeAvailabilityDrain {
				t.Errorf("unexpected request %+v", req)
			}
			if got := len(req.DefaultAddrPool) == 1 && req.DefaultAddrPool[0] == netip.MustParsePrefix("10.10.0.0/16") && req.SubnetSize == 24; got != tc.wantPool {
				t.Errorf("DefaultAddrPool/SubnetSize kept = %v, want %v (%+v)", got, tc.wantPool, req)
			}
			if got := req.DataPathPort == 4789; got != tc.wantPathPort {
				t.Errorf("DataPathPort kept = %v, want %v", got, tc.wantPathPort)
			}
		})
	}
	t.Run("already in a swarm", func(t *testing.T) {
		rec := serve(t, NewHandler(newFakeCluster()), "POST", "/swarm/init", `{}`)
		wantStatus(t, rec, 503)
		if got := errorMessage(t, rec); got != `This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.` {
			t.Errorf("message = %q", got)
		}
	})
}

func TestSwarmJoin(t *testing.T) {
	f := newInactiveBackend()
	h := NewHandler(f)
	rec := serve(t, h, "POST", "/v1.47/swarm/join", `{"ListenAddr":"0.0.0.0:2377","RemoteAddrs":["10.0.0.1:2377"],"JoinToken":"SWMTKN-1-x"}`)
	wantStatus(t, rec, 200)
	if rec.Body.Len() != 0 {
		t.Errorf("body = %q, want empty", rec.Body.String())
	}
	joins := f.recorded().joins
	if len(joins) != 1 || joins[0].JoinToken != "SWMTKN-1-x" || len(joins[0].RemoteAddrs) != 1 || joins[0].RemoteAddrs[0] != "10.0.0.1:2377" {
		t.Errorf("joins = %+v", joins)
	}
	// Now a worker: the swarm header says so and cluster reads are refused.
	if got := serve(t, h, "HEAD", "/_ping", "").Header().Get("Swarm"); got != "active/worker" {
		t.Errorf("Swarm = %q", got)
	}
	rec = serve(t, h, "GET", "/nodes", "")
	wantStatus(t, rec, 503)
	if got := errorMessage(t, rec); got != errdefs.MsgNotManager {
		t.Errorf("message = %q", got)
	}

	rec = serve(t, NewHandler(newInactiveBackend()), "POST", "/swarm/join", `{"RemoteAddrs":["x:1"],"JoinToken":"bad"}`)
	wantStatus(t, rec, 400)
}

func TestSwarmLeave(t *testing.T) {
	for _, tc := range []struct {
		query     string
		wantForce bool
	}{
		{"", false}, {"?force=0", false}, {"?force=false", false}, {"?force=no", false},
		{"?force=1", true}, {"?force=true", true}, {"?force=True", true}, {"?force=yes", true},
	} {
		f := newFakeCluster()
		rec := serve(t, NewHandler(f), "POST", "/swarm/leave"+tc.query, "")
		leaves := f.recorded().leaves
		if len(leaves) != 1 || leaves[0] != tc.wantForce {
			t.Errorf("%q: leaves = %v, want [%v]", tc.query, leaves, tc.wantForce)
		}
		if tc.wantForce {
			wantStatus(t, rec, 200)
		} else {
			wantStatus(t, rec, 503) // a manager must force
		}
	}
	rec := serve(t, NewHandler(newInactiveBackend()), "POST", "/swarm/leave", "")
	wantStatus(t, rec, 503)
	if got := errorMessage(t, rec); got != "This node is not part of a swarm" {
		t.Errorf("message = %q", got)
	}
}

func TestSwarmInspect(t *testing.T) {
	f := newFakeCluster()
	rec := serve(t, NewHandler(f), "GET", "/v1.47/swarm", "")
	wantStatus(t, rec, 200)
	var sw swarm.Swarm
	decodeJSON(t, rec, &sw)
	if sw.ID != f.sw.ID || sw.Version.Index != 7 || sw.JoinTokens.Worker != "SWMTKN-1-worker-0" || sw.Spec.Name != "default" {
		t.Errorf("unexpected swarm %+v", sw)
	}
	rec = serve(t, NewHandler(newInactiveBackend()), "GET", "/swarm", "")
	wantStatus(t, rec, 503)
	if got := errorMessage(t, rec); got != "This node is not part of a swarm" {
		t.Errorf("message = %q", got)
	}
}

func TestSwarmUpdate(t *testing.T) {
	spec := `{"Name":"default","Orchestration":{"TaskHistoryRetentionLimit":3},"Labels":{"a":"b"}}`
	for _, tc := range []struct {
		name, query, body string
		code              int
		msg               string
		flags             SwarmUpdateFlags
	}{
		{name: "plain", query: "?version=7", body: spec, code: 200},
		{name: "rotate all", query: "?version=7&rotateWorkerToken=true&rotateManagerToken=1&rotateManagerUnlockKey=True", body: spec, code: 200,
			flags: SwarmUpdateFlags{RotateWorkerToken: true, RotateManagerToken: true, RotateManagerUnlockKey: true}},
		{name: "rotate false", query: "?version=7&rotateWorkerToken=false&rotateManagerToken=0&rotateManagerUnlockKey=", body: spec, code: 200},
		{name: "stale version", query: "?version=6", body: spec, code: 409, msg: "update out of sequence"},
		{name: "missing version", query: "", body: spec, code: 400, msg: "invalid swarm version '': the version query parameter is required"},
		{name: "bad version", query: "?version=x", body: spec, code: 400, msg: `invalid swarm version 'x': strconv.ParseUint: parsing "x": invalid syntax`},
		{name: "negative version", query: "?version=-1", body: spec, code: 400},
		{name: "bad flag", query: "?version=7&rotateWorkerToken=maybe", body: spec, code: 400, msg: "invalid value for rotateWorkerToken: maybe"},
		{name: "bad unlock flag", query: "?version=7&rotateManagerUnlockKey=2", body: spec, code: 400, msg: "invalid value for rotateManagerUnlockKey: 2"},
		{name: "no body", query: "?version=7", body: "", code: 400, msg: "invalid JSON: the request body is empty, a JSON object is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster()
			rec := serve(t, NewHandler(f), "POST", "/v1.47/swarm/update"+tc.query, tc.body)
			wantStatus(t, rec, tc.code)
			calls := f.recorded().swarmUpdates
			if tc.code != 200 {
				if msg := errorMessage(t, rec); tc.msg != "" && msg != tc.msg {
					t.Errorf("message = %q, want %q", msg, tc.msg)
				}
				if tc.code == 400 && len(calls) != 0 {
					t.Errorf("backend called for a bad request: %+v", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("SwarmUpdate called %d times", len(calls))
			}
			c := calls[0]
			if c.Version != 7 || c.Flags != tc.flags || c.Spec.Name != "default" || c.Spec.Labels["a"] != "b" ||
				c.Spec.Orchestration.TaskHistoryRetentionLimit == nil || *c.Spec.Orchestration.TaskHistoryRetentionLimit != 3 {
				t.Errorf("unexpected call %+v", c)
			}
		})
	}
}

// The InitRequest answer is a bare JSON string, as dockerd's.
func TestSwarmInitAnswerIsJSONString(t *testing.T) {
	rec := serve(t, NewHandler(newInactiveBackend()), "POST", "/swarm/init", `{"ListenAddr":"0.0.0.0:2377"}`)
	var raw json.RawMessage
	decodeJSON(t, rec, &raw)
	if string(raw) != `"`+idA+`"` {
		t.Errorf("body = %s", raw)
	}
}
