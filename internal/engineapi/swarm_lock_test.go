package engineapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// lockingBackend adds autolock to the fake cluster.
type lockingBackend struct {
	*fakeBackend
	key       string
	unlockErr error
	unlocked  []string
}

func (l *lockingBackend) SwarmUnlock(_ context.Context, key string) error {
	l.unlocked = append(l.unlocked, key)
	return l.unlockErr
}

func (l *lockingBackend) SwarmUnlockKey(context.Context) (string, error) { return l.key, nil }

func TestSwarmUnlockRoutes(t *testing.T) {
	b := &lockingBackend{fakeBackend: newFakeCluster(), key: "SWMKEY-1-abc"}
	h := NewHandler(b)

	rec := serve(t, h, http.MethodGet, "/v1.41/swarm/unlockkey", "")
	wantStatus(t, rec, http.StatusOK)
	var resp swarm.UnlockKeyResponse
	decodeJSON(t, rec, &resp)
	if resp.UnlockKey != "SWMKEY-1-abc" {
		t.Errorf("unlock key = %q", resp.UnlockKey)
	}

	rec = serve(t, h, http.MethodPost, "/v1.41/swarm/unlock", `{"UnlockKey":"SWMKEY-1-xyz"}`)
	wantStatus(t, rec, http.StatusOK)
	if len(b.unlocked) != 1 || b.unlocked[0] != "SWMKEY-1-xyz" {
		t.Errorf("backend got %v", b.unlocked)
	}

	b.unlockErr = errdefs.Unauthorized("swarm could not be unlocked: invalid key provided")
	rec = serve(t, h, http.MethodPost, "/swarm/unlock", `{"UnlockKey":"SWMKEY-1-bad"}`)
	wantStatus(t, rec, http.StatusUnauthorized)
	if msg := errorMessage(t, rec); msg != "swarm could not be unlocked: invalid key provided" {
		t.Errorf("message %q", msg)
	}
	rec = serve(t, h, http.MethodPost, "/swarm/unlock", `{"UnlockKey":`)
	wantStatus(t, rec, http.StatusBadRequest)

	// A backend without autolock says so.
	rec = serve(t, NewHandler(newFakeCluster()), http.MethodGet, "/swarm/unlockkey", "")
	wantStatus(t, rec, http.StatusBadRequest)
}
