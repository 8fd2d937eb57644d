package daemon

import (
	"bytes"
	"context"
	"io"
	"time"

	"github.com/flotilla-org/flotilla/internal/backupfile"
	"github.com/flotilla-org/flotilla/internal/engineapi"
	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// SwarmBackup writes a backup file of the whole cluster state. The router
// sends the request to the leader; it lands on a follower only when no
// leader is known or leadership moved while it was forwarded, and then it
// is refused: a follower's replica may miss acknowledged writes.
func (b *backend) SwarmBackup(ctx context.Context, w io.Writer) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	if !m.IsLeader() {
		if id, _ := m.Leader(); id == "" {
			return errdefs.Unavailable("cannot take a consistent backup: the swarm has no leader (too few managers are online). Bring the lost managers back, or recover with 'flotilla swarm init --force-new-cluster' on a surviving manager; a copy of a stopped manager's data dir is also a backup")
		}
		return errdefs.Unavailable("leadership moved while the backup request was forwarded; retry")
	}
	st, err := m.Backup(ctx)
	if err != nil {
		return err
	}
	h := backupfile.Header{ClusterID: st.ClusterID, Index: st.Index, Term: st.Term, Created: time.Now().UTC(), FlotillaVersion: engineapi.Version}
	for _, p := range st.Managers {
		h.Managers = append(h.Managers, backupfile.Peer{NodeID: p.NodeID, Addr: p.Addr})
	}
	// Encode in memory first: an encoding failure must not leave half a
	// file in the response.
	var buf bytes.Buffer
	if err := backupfile.Encode(&buf, h, st.State); err != nil {
		return err
	}
	b.d.log.Info("swarm backup taken", "cluster", st.ClusterID, "index", st.Index, "bytes", buf.Len())
	_, err = w.Write(buf.Bytes())
	return err
}
