package engineapi

import (
	"context"
	"io"
	"net/http"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Backup and restore are flotilla extensions of the Engine API, under
// /flotilla/ so they never clash with a Docker path (they are served with
// and without a /vX.Y prefix, like every route).
const (
	// PathSwarmBackup (GET) answers a backup file of the whole cluster
	// state, taken on the leader (a follower forwards the request).
	PathSwarmBackup = "/flotilla/swarm/backup"
	// PathSwarmRestore (POST, body: a backup file; query: listenAddr,
	// advertiseAddr) makes this node, in no swarm, the only manager of the
	// cluster in the backup. It answers the new node ID as a JSON string.
	PathSwarmRestore = "/flotilla/swarm/restore"
)

// maxBackupSize bounds a restore request's body.
const maxBackupSize = 1 << 30

// RestoreRequest is where the restored manager listens and is reached.
type RestoreRequest struct {
	ListenAddr    string
	AdvertiseAddr string
}

// BackupBackend is implemented by a Backend that backs up and restores the
// cluster state; without it the routes answer 501.
type BackupBackend interface {
	// SwarmBackup writes a backup file of the cluster state to w. It runs
	// on the leader and must fail before writing anything when it cannot
	// take a consistent backup.
	SwarmBackup(ctx context.Context, w io.Writer) error
	// SwarmRestore rebuilds the cluster of a backup file with this node as
	// its only manager and returns the node's new ID.
	SwarmRestore(ctx context.Context, req RestoreRequest, backup []byte) (string, error)
}

func (a *api) backupRoutes() []route {
	return []route{
		{method: http.MethodGet, path: PathSwarmBackup, handler: a.swarmBackup},
		{method: http.MethodPost, path: PathSwarmRestore, handler: a.swarmRestore},
	}
}

func (a *api) backupBackend() (BackupBackend, error) {
	bb, ok := a.b.(BackupBackend)
	if !ok {
		return nil, errdefs.Unavailable("this daemon cannot back up or restore a swarm")
	}
	return bb, nil
}

func (a *api) swarmBackup(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	bb, err := a.backupBackend()
	if err != nil {
		return err
	}
	// The backend fails before its first write when it cannot back up,
	// so the error still reaches the client as a JSON error.
	hw := &headerOnWrite{w: w}
	return bb.SwarmBackup(r.Context(), hw)
}

// headerOnWrite sets the content type just before the first byte, so an
// early error is still answered as JSON.
type headerOnWrite struct {
	w       http.ResponseWriter
	started bool
}

func (h *headerOnWrite) Write(p []byte) (int, error) {
	if !h.started {
		h.started = true
		h.w.Header().Set("Content-Type", "application/octet-stream")
	}
	return h.w.Write(p)
}

func (a *api) swarmRestore(w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	bb, err := a.backupBackend()
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBackupSize+1))
	if err != nil {
		return errdefs.Invalid("read the backup: %v", err)
	}
	if len(data) > maxBackupSize {
		return errdefs.Invalid("the backup is larger than %d bytes", maxBackupSize)
	}
	q := r.URL.Query()
	id, err := bb.SwarmRestore(r.Context(), RestoreRequest{ListenAddr: q.Get("listenAddr"), AdvertiseAddr: q.Get("advertiseAddr")}, data)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, id)
}
