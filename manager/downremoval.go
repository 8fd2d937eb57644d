package manager

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/manager/state"
)

// NodeDownRemovalLabel is the cluster spec label through which the API
// shows and sets Cluster.NodeDownRemoval. Docker's swarm.Spec has no field
// for it, and the docker CLI sends back the labels it read, so `docker
// swarm update` keeps the setting; an update without the label keeps it
// too.
const NodeDownRemovalLabel = "flotilla.node-down-removal"

// ParseNodeDownRemoval reads the label's value: a duration, 0 or "off".
func ParseNodeDownRemoval(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "off" || v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errdefs.Invalid("invalid %s %q: it must be a duration such as 30m or 1h, or 0 to turn automatic removal of down nodes off", NodeDownRemovalLabel, v)
	}
	return d, nil
}

// PublicClusterInfo is the cluster as the API shows it: the stored spec
// plus the flotilla settings Docker's types have no field for.
func PublicClusterInfo(c *state.Cluster) swarm.ClusterInfo {
	info := c.ClusterInfo
	info.Spec.Labels = wireLabels(maps.Clone(info.Spec.Labels))
	if c.NodeDownRemoval > 0 {
		info.Spec.Labels[NodeDownRemovalLabel] = c.NodeDownRemoval.String()
	}
	info.TLSInfo = clusterTLSInfo(c)
	if info.Spec.Raft.KeepOldSnapshots == nil {
		none := uint64(0) // flotilla keeps no old snapshots; Docker shows 0
		info.Spec.Raft.KeepOldSnapshots = &none
	}
	return info
}

// TakeNodeDownRemoval moves the label out of an incoming spec into the
// cluster object; without the label the current setting stays.
func TakeNodeDownRemoval(c *state.Cluster, spec *swarm.Spec) error {
	v, ok := spec.Labels[NodeDownRemovalLabel]
	if !ok {
		return nil
	}
	d, err := ParseNodeDownRemoval(v)
	if err != nil {
		return err
	}
	spec.Labels = maps.Clone(spec.Labels)
	delete(spec.Labels, NodeDownRemovalLabel)
	if len(spec.Labels) == 0 {
		spec.Labels = nil
	}
	c.NodeDownRemoval = d
	return nil
}

// removeDownNodes runs on the leader: it removes nodes that have been Down
// longer than the cluster's NodeDownRemoval, as `node rm` would (a manager
// leaves Raft first, and only when the others keep a quorum). The clock of
// a node starts no earlier than this term, so a cluster that was off for a
// while gives its nodes the whole period to come back.
func (m *Manager) removeDownNodes(ctx context.Context) {
	termStart := time.Now()
	refused := map[string]string{} // node -> last reason logged
	for {
		wait := time.Second
		if c := m.store.Cluster(); c != nil && c.NodeDownRemoval > 0 {
			wait = min(max(c.NodeDownRemoval/4, 100*time.Millisecond), time.Second)
			for _, n := range m.overdue(c.NodeDownRemoval, termStart) {
				if ctx.Err() != nil {
					return
				}
				err := m.removeDownNode(ctx, n.ID, c.NodeDownRemoval, termStart)
				if err != nil && refused[n.ID] != err.Error() && ctx.Err() == nil && m.IsLeader() {
					refused[n.ID] = err.Error()
					m.log.Warn("not removing a node that stayed down", "target_node", n.ID, "hostname", n.Description.Hostname, "reason", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// overdue lists the nodes Down for longer than limit.
func (m *Manager) overdue(limit time.Duration, termStart time.Time) []*state.Node {
	var out []*state.Node
	for _, n := range m.store.Nodes() {
		if downFor(n, termStart) > limit {
			out = append(out, n)
		}
	}
	return out
}

// downFor is how long a node has been Down as this leader can tell (0 if
// it is not Down).
func downFor(n *state.Node, termStart time.Time) time.Duration {
	if n.Status.State != swarm.NodeStateDown {
		return 0
	}
	since := n.StateSince
	if since.Before(termStart) {
		since = termStart
	}
	return time.Since(since)
}

// removeDownNode re-checks the node under the write lock and removes it.
func (m *Manager) removeDownNode(ctx context.Context, id string, limit time.Duration, termStart time.Time) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	n := m.store.Node(id)
	if n == nil {
		return nil
	}
	down := downFor(n, termStart)
	if down <= limit {
		return nil // it came back meanwhile
	}
	servers, err := m.raft.Servers()
	if err != nil {
		return err
	}
	inRaft := slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
	role := swarm.NodeRoleWorker
	if inRaft {
		role = swarm.NodeRoleManager
		leaderID, _ := m.raft.Leader()
		if err := downManagerRemovable(servers, id, leaderID, m.reachable); err != nil {
			return err
		}
		if err := m.removeVoter(id); err != nil {
			return err
		}
	}
	if err := m.deleteNode(ctx, n); err != nil {
		return err
	}
	m.log.Info("removed a node that stayed down longer than the node-down-removal period",
		"target_node", id, "hostname", n.Description.Hostname, "role", role,
		"down_for", down.Round(time.Millisecond), "node_down_removal", limit)
	return nil
}

// reachable says whether a manager answers: the leader, or a node Ready
// and not marked unreachable.
func (m *Manager) reachable(id string) bool {
	if leaderID, _ := m.raft.Leader(); id == leaderID {
		return true
	}
	n := m.store.Node(id)
	return n != nil && n.Status.State == swarm.NodeStateReady &&
		(n.ManagerStatus == nil || n.ManagerStatus.Reachability != swarm.ReachabilityUnreachable)
}

// downManagerRemovable is the quorum rule for removing a down manager:
// never the leader or the last voter, and only when the voters left that
// answer are a majority of the configuration without it.
func downManagerRemovable(servers []raft.Server, id, leaderID string, reachable func(string) bool) error {
	if id == leaderID {
		return errdefs.Invalid("manager %s is the leader", id)
	}
	left, up := 0, 0
	for _, s := range servers {
		sid := string(s.ID)
		if s.Suffrage != raft.Voter || sid == id {
			continue
		}
		left++
		if reachable(sid) {
			up++
		}
	}
	if left == 0 {
		return errdefs.Invalid("manager %s is the last manager of the swarm", id)
	}
	if up < quorum(left) {
		return errdefs.Invalid("%s", fmt.Sprintf("removing manager %s would leave %d managers of which only %d answer, fewer than the %d a quorum needs", id, left, up, quorum(left)))
	}
	return nil
}
