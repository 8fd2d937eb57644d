package manager

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/hashicorp/raft"
	"github.com/moby/moby/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flotilla-org/flotilla/manager/scheduler"
	"github.com/flotilla-org/flotilla/manager/state"
)

// Metrics read from this manager's Raft and its replica of the state
// when scraped, so they cost nothing between scrapes. Every manager
// reports the cluster-wide figures from its own replica: dashboards take
// the max over managers (or the leader's, flotilla_raft_leader == 1).
var (
	descRaftTerm        = prometheus.NewDesc("flotilla_raft_term", "Current Raft term as this manager sees it.", nil, nil)
	descRaftLeader      = prometheus.NewDesc("flotilla_raft_leader", "1 if this manager is the Raft leader, else 0.", nil, nil)
	descRaftHasLeader   = prometheus.NewDesc("flotilla_raft_has_leader", "1 if this manager knows a leader (the managers have quorum), else 0.", nil, nil)
	descRaftVoters      = prometheus.NewDesc("flotilla_raft_voters", "Managers in the Raft configuration with a vote.", nil, nil)
	descRaftLastIndex   = prometheus.NewDesc("flotilla_raft_last_log_index", "Index of the last entry in this manager's Raft log.", nil, nil)
	descRaftCommitIndex = prometheus.NewDesc("flotilla_raft_commit_index", "Highest Raft log index this manager knows to be committed.", nil, nil)
	descRaftApplied     = prometheus.NewDesc("flotilla_raft_applied_index", "Highest Raft log index applied to this manager's state.", nil, nil)
	descRaftSnapIndex   = prometheus.NewDesc("flotilla_raft_last_snapshot_index", "Raft log index of this manager's latest snapshot.", nil, nil)
	descRaftSnapTime    = prometheus.NewDesc("flotilla_raft_last_snapshot_timestamp_seconds", "Unix time of this manager's latest Raft snapshot (0: none yet).", nil, nil)
	descRaftLogBytes    = prometheus.NewDesc("flotilla_raft_log_bytes", "Size on disk of this manager's Raft log (write-ahead log segments, which are allocated 64 MiB at a time).", nil, nil)
	descRaftLogEntries  = prometheus.NewDesc("flotilla_raft_log_entries", "Entries in this manager's Raft log (not yet compacted into a snapshot, plus the trailing ones kept after one).", nil, nil)

	descStoreObjects = prometheus.NewDesc("flotilla_store_objects", "Objects in this manager's replica of the cluster state, by kind.", []string{"kind"}, nil)
	descNodes        = prometheus.NewDesc("flotilla_nodes", "Nodes of the cluster by state, availability and role.", []string{"state", "availability", "role"}, nil)
	descTasks        = prometheus.NewDesc("flotilla_tasks", "Tasks of the cluster by observed state and desired state.", []string{"state", "desired_state"}, nil)
	descSvcDesired   = prometheus.NewDesc("flotilla_service_tasks_desired", "Tasks a service wants running: its replicas (replicated), or its tasks meant to run on Ready nodes (global).", []string{"service"}, nil)
	descSvcRunning   = prometheus.NewDesc("flotilla_service_tasks_running", "A service's tasks that are running on Ready nodes (as REPLICAS in 'service ls').", []string{"service"}, nil)
	descUnplaceable  = prometheus.NewDesc("flotilla_scheduler_unplaceable_tasks", "Tasks waiting for a node that no node can take, by the reason that turned away the most nodes.", []string{"reason"}, nil)

	descSessions       = prometheus.NewDesc("flotilla_dispatcher_sessions", "Nodes heard from within the last three heartbeat periods by this manager's dispatcher (on the leader: every node, directly or relayed by a follower).", nil, nil)
	descServedSessions = prometheus.NewDesc("flotilla_dispatcher_served_sessions", "Nodes whose session this manager serves (heartbeats sent to it within the last three periods); a follower relays their heartbeats and status reports to the leader.", nil, nil)
)

var storeKinds = []string{state.TableNodes, state.TableServices, state.TableTasks, state.TableNetworks, state.TableSecrets, state.TableConfigs}

// CollectMetrics sends this manager's scrape-time metrics: Raft figures
// and counts from its replica of the state.
func (m *Manager) CollectMetrics(ch chan<- prometheus.Metric) {
	m.collectRaft(ch)
	m.collectState(ch)
	gauge(ch, descSessions, float64(m.disp.Sessions()))
	gauge(ch, descServedSessions, float64(m.disp.ServedSessions()))
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Manager) collectRaft(ch chan<- prometheus.Metric) {
	r := m.raft.Raft
	stats := r.Stats()
	num := func(key string) float64 {
		v, _ := strconv.ParseUint(stats[key], 10, 64)
		return float64(v)
	}
	leaderAddr, _ := r.LeaderWithID()
	gauge(ch, descRaftTerm, float64(r.CurrentTerm()))
	gauge(ch, descRaftLeader, boolGauge(r.State() == raft.Leader))
	gauge(ch, descRaftHasLeader, boolGauge(leaderAddr != ""))
	gauge(ch, descRaftLastIndex, float64(r.LastIndex()))
	gauge(ch, descRaftCommitIndex, num("commit_index"))
	gauge(ch, descRaftApplied, float64(r.AppliedIndex()))
	gauge(ch, descRaftSnapIndex, num("last_snapshot_index"))
	if servers, err := m.raft.Servers(); err == nil {
		voters := 0
		for _, s := range servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		gauge(ch, descRaftVoters, float64(voters))
	}
	gauge(ch, descRaftLogBytes, float64(dirBytes(filepath.Join(m.cfg.Dir, "wal"))))
	gauge(ch, descRaftLogEntries, float64(m.raft.LogEntries()))
	gauge(ch, descRaftSnapTime, newestModTime(filepath.Join(m.cfg.Dir, "snapshots")))
}

// dirBytes is the total size of the regular files directly in dir.
func dirBytes(dir string) int64 {
	entries, _ := os.ReadDir(dir)
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

// newestModTime is the Unix time of the newest entry in dir (a snapshot
// store keeps one directory per snapshot), 0 if there is none.
func newestModTime(dir string) float64 {
	entries, _ := os.ReadDir(dir)
	var newest float64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.IsDir() && filepath.Ext(e.Name()) != ".tmp" {
			if t := float64(info.ModTime().UnixNano()) / 1e9; t > newest {
				newest = t
			}
		}
	}
	return newest
}

func (m *Manager) collectState(ch chan<- prometheus.Metric) {
	v := m.store.View()
	for _, kind := range storeKinds {
		gauge(ch, descStoreObjects, float64(len(v.List(kind))), kind)
	}

	type nodeKey struct{ state, availability, role string }
	nodes := map[nodeKey]int{}
	for _, n := range v.Nodes() {
		nodes[nodeKey{string(n.Status.State), string(n.Spec.Availability), string(n.Role)}]++
	}
	for k, c := range nodes {
		gauge(ch, descNodes, float64(c), k.state, k.availability, k.role)
	}

	type taskKey struct{ state, desired string }
	tasks := map[taskKey]int{}
	unplaceable := map[string]int{}
	for _, t := range v.Tasks() {
		tasks[taskKey{string(t.Status.State), string(t.DesiredState)}]++
		if t.Status.State == swarm.TaskStatePending && t.DesiredState == swarm.TaskStateRunning && t.Status.Err != "" {
			unplaceable[scheduler.ReasonKind(t.Status.Err)]++
		}
	}
	for k, c := range tasks {
		gauge(ch, descTasks, float64(c), k.state, k.desired)
	}
	for reason, c := range unplaceable {
		gauge(ch, descUnplaceable, float64(c), reason)
	}
	// The same counts as the API's service list (REPLICAS in 'service
	// ls'): a task on a node that is not Ready is not counted as running.
	for _, svc := range m.Services(true) {
		gauge(ch, descSvcDesired, float64(svc.ServiceStatus.DesiredTasks), svc.Spec.Name)
		gauge(ch, descSvcRunning, float64(svc.ServiceStatus.RunningTasks), svc.Spec.Name)
	}
}
