package engineapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"runtime"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

func (a *api) systemRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/_ping", handler: a.ping},
		{method: http.MethodHead, path: "/_ping", handler: a.ping},
		{method: http.MethodGet, path: "/version", handler: a.version},
		{method: http.MethodGet, path: "/info", handler: a.info},
	}
}

// swarmStatus is the Swarm header of /_ping, as dockerd sets it: the local
// node state, with the role appended when the node is active.
func swarmStatus(info swarm.Info) string {
	state := info.LocalNodeState
	if state == "" {
		state = swarm.LocalNodeStateInactive
	}
	s := string(state)
	if state == swarm.LocalNodeStateActive {
		if info.ControlAvailable {
			s += "/manager"
		} else {
			s += "/worker"
		}
	}
	return s
}

func (a *api) ping(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Swarm", swarmStatus(a.b.SwarmInfo(r.Context())))
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

func (a *api) version(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	host := hostFacts()
	return writeJSON(w, http.StatusOK, system.VersionResponse{
		Platform:      system.PlatformInfo{Name: platformName},
		Version:       Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: host.kernelVersion,
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: Version,
			// The docker CLI prints these keys for the "Engine" component.
			Details: map[string]string{
				"ApiVersion":    APIVersion,
				"MinAPIVersion": MinAPIVersion,
				"GoVersion":     runtime.Version(),
				"Os":            runtime.GOOS,
				"Arch":          runtime.GOARCH,
				"KernelVersion": host.kernelVersion,
				"Experimental":  "false",
			},
		}},
	})
}

func (a *api) info(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	host := hostFacts()
	sw := a.b.SwarmInfo(r.Context())
	name := a.b.NodeName()
	info := system.Info{
		ID:                engineID(sw.NodeID, name),
		Name:              name,
		Driver:            platformName,
		ServerVersion:     Version,
		OSType:            osType,
		OperatingSystem:   host.operatingSystem,
		OSVersion:         host.osVersion,
		KernelVersion:     host.kernelVersion,
		Architecture:      host.architecture,
		NCPU:              runtime.NumCPU(),
		MemTotal:          host.memTotal,
		NGoroutines:       runtime.NumGoroutine(),
		SystemTime:        time.Now().Format(time.RFC3339Nano),
		ExperimentalBuild: false,
		Swarm:             sw,
		Warnings:          append([]string(nil), sw.Warnings...),
	}
	return writeJSON(w, http.StatusOK, info)
}

// engineID is the ID of /info: the swarm node ID, or outside a swarm a
// placeholder derived from the hostname, so it is stable across restarts.
func engineID(nodeID, hostname string) string {
	if nodeID != "" {
		return nodeID
	}
	sum := sha256.Sum256([]byte("flotilla-engine:" + hostname))
	return hex.EncodeToString(sum[:])[:25]
}
