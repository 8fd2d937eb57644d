package engineapi

import (
	"net/http"

	"github.com/moby/moby/api/types/swarm"
)

func (a *api) swarmRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/swarm/init", handler: a.swarmInit},
		{method: http.MethodPost, path: "/swarm/join", handler: a.swarmJoin},
		{method: http.MethodPost, path: "/swarm/leave", handler: a.swarmLeave},
		{method: http.MethodGet, path: "/swarm", handler: a.swarmInspect},
		{method: http.MethodPost, path: "/swarm/update", handler: a.swarmUpdate},
	}
}

func (a *api) swarmInit(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req swarm.InitRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	// As dockerd: fields added in later API versions are ignored when an
	// older client sends them.
	v := apiVersion(r.Context())
	if compareVersions(v, "1.39") < 0 {
		req.DefaultAddrPool = nil
		req.SubnetSize = 0
	}
	if compareVersions(v, "1.40") < 0 {
		req.DataPathPort = 0
	}
	nodeID, err := a.b.SwarmInit(r.Context(), req)
	if err != nil {
		return err
	}
	// dockerd answers the node ID as a JSON string.
	return writeJSON(w, http.StatusOK, nodeID)
}

func (a *api) swarmJoin(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req swarm.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	return a.b.SwarmJoin(r.Context(), req)
}

func (a *api) swarmLeave(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	return a.b.SwarmLeave(r.Context(), boolValue(r, "force"))
}

func (a *api) swarmInspect(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	sw, err := a.b.SwarmInspect(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sw)
}

func (a *api) swarmUpdate(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var spec swarm.Spec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	version, err := objectVersion(r, "swarm")
	if err != nil {
		return err
	}
	var flags SwarmUpdateFlags
	for _, p := range []struct {
		key string
		dst *bool
	}{
		{"rotateWorkerToken", &flags.RotateWorkerToken},
		{"rotateManagerToken", &flags.RotateManagerToken},
		{"rotateManagerUnlockKey", &flags.RotateManagerUnlockKey},
	} {
		if *p.dst, err = strictBool(r, p.key); err != nil {
			return err
		}
	}
	return a.b.SwarmUpdate(r.Context(), version, spec, flags)
}
