package engineapi

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Locker is implemented by a Backend that supports autolock: unlocking a
// manager that restarted locked, and reading the swarm's unlock key.
type Locker interface {
	// SwarmUnlock starts a locked manager with the unlock key.
	SwarmUnlock(ctx context.Context, key string) error
	// SwarmUnlockKey returns the unlock key, "" when autolock is off.
	SwarmUnlockKey(ctx context.Context) (string, error)
}

func (a *api) lockRoutes() []route {
	return []route{
		{method: http.MethodPost, path: "/swarm/unlock", handler: a.swarmUnlock},
		{method: http.MethodGet, path: "/swarm/unlockkey", handler: a.swarmUnlockKey},
	}
}

func (a *api) locker() (Locker, error) {
	l, ok := a.b.(Locker)
	if !ok {
		return nil, errdefs.Invalid("this daemon does not support autolock")
	}
	return l, nil
}

func (a *api) swarmUnlock(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req swarm.UnlockRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	l, err := a.locker()
	if err != nil {
		return err
	}
	if err := l.SwarmUnlock(r.Context(), req.UnlockKey); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *api) swarmUnlockKey(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	l, err := a.locker()
	if err != nil {
		return err
	}
	key, err := l.SwarmUnlockKey(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, swarm.UnlockKeyResponse{UnlockKey: key})
}
