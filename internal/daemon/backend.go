package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/engineapi"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager"
	"github.com/flotilla-org/flotilla/manager/raftnode"
)

var errNoLeader = raftnode.ErrNoLeader

// errNoLongerLeader answers a write on a manager that believed it led but
// could not confirm it with a quorum (and knows no other leader).
var errNoLongerLeader = errdefs.Unavailable("this manager is no longer the leader; the request was not applied: retry (a quorum did not confirm its leadership)")

// backend implements engineapi.Backend for the daemon.
type backend struct{ d *Daemon }

var _ engineapi.Backend = (*backend)(nil)

func (b *backend) NodeName() string { return b.d.cfg.Hostname }

func (b *backend) SwarmInfo(ctx context.Context) swarm.Info {
	n := b.d.current()
	if ln := b.d.lockedNode(); n == nil && ln != nil {
		return lockedInfo(ln)
	}
	if n == nil {
		info := swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
		b.d.mu.Lock()
		info.Error = b.d.lastErr
		b.d.mu.Unlock()
		return info
	}
	st := n.state()
	host, _, _ := net.SplitHostPort(st.AdvertiseAddr)
	info := swarm.Info{
		NodeID:         st.NodeID,
		NodeAddr:       host,
		LocalNodeState: swarm.LocalNodeStateActive,
		RemoteManagers: st.Managers,
	}
	n.mu.Lock()
	info.Error = n.err
	n.mu.Unlock()
	if info.Error != "" {
		// e.g. removed from the swarm: that, not the lack of a leader
		// or a session, is what the user must act on.
		info.LocalNodeState = swarm.LocalNodeStateError
		return info
	}
	m := n.manager()
	if m == nil {
		if lastOK, _, err := n.session.Status(); lastOK.IsZero() && err != nil {
			info.LocalNodeState = swarm.LocalNodeStatePending
			info.Error = err.Error()
		}
		return info
	}
	info.ControlAvailable = true
	if c := m.Store().Cluster(); c != nil {
		ci := manager.PublicClusterInfo(c)
		info.Cluster = &ci
	}
	nodes := m.Store().Nodes()
	info.Nodes = len(nodes)
	for _, nd := range nodes {
		if nd.ManagerStatus != nil {
			info.Managers++
		}
	}
	if peers := m.Managers(); len(peers) > 0 {
		info.RemoteManagers = peers
	}
	if id, _ := m.Leader(); id == "" {
		info.Error = errNoLeader.Error()
	}
	return info
}

// mgr returns the local manager or the error Docker gives for this state.
func (b *backend) mgr() (*manager.Manager, error) {
	n := b.d.current()
	if n == nil {
		if b.d.lockedNode() != nil {
			return nil, ErrSwarmLocked
		}
		return nil, errdefs.ErrNotInSwarm
	}
	m := n.manager()
	if m == nil {
		return nil, errdefs.ErrNotManager
	}
	return m, nil
}

func (b *backend) SwarmInspect(ctx context.Context) (swarm.Swarm, error) {
	m, err := b.mgr()
	if err != nil {
		return swarm.Swarm{}, err
	}
	return m.Swarm()
}

func (b *backend) SwarmUpdate(ctx context.Context, version uint64, spec swarm.Spec, f engineapi.SwarmUpdateFlags) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	return m.UpdateSwarm(ctx, version, spec, manager.UpdateFlags{RotateWorkerToken: f.RotateWorkerToken, RotateManagerToken: f.RotateManagerToken,
		RotateUnlockKey: f.RotateManagerUnlockKey})
}

func (b *backend) Nodes(ctx context.Context) ([]swarm.Node, error) {
	m, err := b.mgr()
	if err != nil {
		return nil, err
	}
	return m.Nodes(), nil
}

func (b *backend) NodeUpdate(ctx context.Context, id string, version uint64, spec swarm.NodeSpec) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	err = m.UpdateNode(ctx, id, version, spec)
	if errors.Is(err, manager.ErrLeadershipMoved) {
		// The leader demoted itself: leadership went to another manager,
		// which finishes the request.
		path := fmt.Sprintf("/nodes/%s/update?version=%s", id, strconv.FormatUint(version, 10))
		return b.forward(ctx, m, http.MethodPost, path, spec)
	}
	return err
}

func (b *backend) NodeRemove(ctx context.Context, id string, force bool) error {
	m, err := b.mgr()
	if err != nil {
		return err
	}
	return m.RemoveNode(ctx, id, force)
}

// forward sends one Engine API request to the current leader, waiting for
// a leader to be elected if there is none yet.
func (b *backend) forward(ctx context.Context, m *manager.Manager, method, path string, body any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, raftnode.DefaultTiming.ApplyTimeout)
	defer cancel()
	if err := m.WaitNewLeader(ctx); err != nil {
		return err
	}
	_, addr := m.Leader()
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+nodeapi.PathAPI+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.d.current().cli.Do(req)
	if err != nil {
		return errdefs.Unavailable("cannot reach the new leader at %s: %v", addr, err)
	}
	defer resp.Body.Close()
	return nodeapi.DecodeResponse(resp, nil)
}

func (b *backend) LeaderProxy(r *http.Request) http.Handler {
	n := b.d.current()
	if n == nil {
		return nil
	}
	m := n.manager()
	if m == nil || r.Header.Get(nodeapi.HeaderStaleRead) != "" {
		return nil
	}
	read := r.Method == http.MethodGet
	if m.IsLeader() {
		// The leader answers from its replica once a quorum confirms that it
		// still leads and its term's barrier has passed: a leader that was
		// paused or cut off may not know yet that another was elected, and
		// one elected a moment ago may not have applied the log. Writes need
		// this too: they resolve names and check versions against the
		// replica before proposing, and a stale replica answered "no such
		// service" for one that existed.
		if m.VerifyRead() {
			return nil
		}
		if read {
			return http.HandlerFunc(n.serveStale)
		}
		if id, _ := m.Leader(); id == "" || id == n.st.NodeID {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				nodeapi.WriteError(w, errNoLongerLeader)
			})
		}
	}
	if read {
		// Reads never fail for want of a leader: without one (or when the
		// leader moved while this request was forwarded here) they are
		// answered from this replica, marked as possibly stale.
		if id, _ := m.Leader(); id == "" || r.Header.Get(nodeapi.HeaderForwarded) != "" {
			return http.HandlerFunc(n.serveStale)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.proxyToLeader(w, r, m, "", nodeapi.PathAPI, engineapi.MaxBodySize)
	})
}
