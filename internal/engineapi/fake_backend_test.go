package engineapi

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// fakeBackend is an in-memory Backend. It behaves enough like a small
// cluster for the docker CLI to run against it, and records the writes it
// receives.
type fakeBackend struct {
	mu sync.Mutex
	fakeServices
	fakeNetworks
	fakeSecrets

	name  string
	info  swarm.Info
	sw    swarm.Swarm
	nodes []swarm.Node

	// clusterErr, when set, is returned by every cluster-state method.
	clusterErr error
	// proxy is returned by LeaderProxy.
	proxy http.Handler
	// panicOn makes the named method panic.
	panicOn string

	calls fakeCalls
}

// fakeCalls records the writes a fakeBackend received.
type fakeCalls struct {
	inits        []swarm.InitRequest
	joins        []swarm.JoinRequest
	leaves       []bool
	swarmUpdates []swarmUpdateCall
	nodeUpdates  []nodeUpdateCall
	nodeRemoves  []nodeRemoveCall
}

type swarmUpdateCall struct {
	Version uint64
	Spec    swarm.Spec
	Flags   SwarmUpdateFlags
}

type nodeUpdateCall struct {
	ID      string
	Version uint64
	Spec    swarm.NodeSpec
}

type nodeRemoveCall struct {
	ID    string
	Force bool
}

const (
	idA = "a1b2c3d4e5f6g7h8i9j0k1l2m" // node-a: manager, leader, the local node
	idB = "b7x1y2z3w4v5u6t7s8r9q0p1o" // node-b: worker
	idC = "b7x9k8j7h6g5f4d3s2a1q0w9e" // node-c: worker; shares the prefix "b7x" with node-b
)

var epoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newNode(id, hostname string, role swarm.NodeRole, version uint64) swarm.Node {
	n := swarm.Node{
		ID:   id,
		Meta: swarm.Meta{Version: swarm.Version{Index: version}, CreatedAt: epoch, UpdatedAt: epoch},
		Spec: swarm.NodeSpec{
			Annotations:  swarm.Annotations{Labels: map[string]string{}},
			Role:         role,
			Availability: swarm.NodeAvailabilityActive,
		},
		Description: swarm.NodeDescription{
			Hostname:  hostname,
			Platform:  swarm.Platform{Architecture: "x86_64", OS: "linux"},
			Resources: swarm.Resources{NanoCPUs: 4e9, MemoryBytes: 8 << 30},
			Engine:    swarm.EngineDescription{EngineVersion: "0.1.0"},
		},
		Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: "10.0.0." + hostname[len(hostname)-1:]},
	}
	if role == swarm.NodeRoleManager {
		n.ManagerStatus = &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable, Addr: "10.0.0.1:2377"}
	}
	return n
}

// newFakeCluster returns an active manager (node-a, the leader) of a
// three-node swarm.
func newFakeCluster() *fakeBackend {
	limit := int64(5)
	a := newNode(idA, "node-a", swarm.NodeRoleManager, 10)
	a.ManagerStatus.Leader = true
	a.Spec.Labels = map[string]string{"zone": "east", "ssd": "true"}
	a.Description.Engine.Labels = map[string]string{"engine": "one"}
	b := newNode(idB, "node-b", swarm.NodeRoleWorker, 11)
	b.Spec.Labels = map[string]string{"zone": "west"}
	b.Description.Engine.Labels = map[string]string{"engine": "two", "gpu": ""}
	c := newNode(idC, "node-c", swarm.NodeRoleWorker, 12)
	c.Spec.Labels = map[string]string{"zone": "east"}

	cluster := swarm.ClusterInfo{
		ID:   "clusterid0123456789abcdef",
		Meta: swarm.Meta{Version: swarm.Version{Index: 7}, CreatedAt: epoch, UpdatedAt: epoch},
		Spec: swarm.Spec{
			Annotations:   swarm.Annotations{Name: "default", Labels: map[string]string{}},
			Orchestration: swarm.OrchestrationConfig{TaskHistoryRetentionLimit: &limit},
			Raft:          swarm.RaftConfig{SnapshotInterval: 10000, ElectionTick: 10, HeartbeatTick: 1},
			Dispatcher:    swarm.DispatcherConfig{HeartbeatPeriod: 5 * time.Second},
			CAConfig:      swarm.CAConfig{NodeCertExpiry: 90 * 24 * time.Hour},
		},
	}
	f := &fakeBackend{
		name: "node-a",
		sw: swarm.Swarm{
			ClusterInfo: cluster,
			JoinTokens:  swarm.JoinTokens{Worker: "SWMTKN-1-worker-0", Manager: "SWMTKN-1-manager-0"},
		},
		nodes: []swarm.Node{a, b, c},
	}
	f.info = swarm.Info{
		NodeID:           idA,
		NodeAddr:         "10.0.0.1",
		LocalNodeState:   swarm.LocalNodeStateActive,
		ControlAvailable: true,
		RemoteManagers:   []swarm.Peer{{NodeID: idA, Addr: "10.0.0.1:2377"}},
		Nodes:            3,
		Managers:         1,
	}
	f.refreshClusterInfo()
	return f
}

// newInactiveBackend returns a node outside any swarm.
func newInactiveBackend() *fakeBackend {
	return &fakeBackend{
		name:       "lonely",
		info:       swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		clusterErr: errdefs.ErrNotInSwarm,
	}
}

func (f *fakeBackend) refreshClusterInfo() {
	ci := f.sw.ClusterInfo
	f.info.Cluster = &ci
}

func (f *fakeBackend) maybePanic(method string) {
	if f.panicOn == method {
		panic("fake backend: " + method)
	}
}

func (f *fakeBackend) SwarmInfo(context.Context) swarm.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maybePanic("SwarmInfo")
	return f.info
}

func (f *fakeBackend) NodeName() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.name
}

func (f *fakeBackend) SwarmInit(_ context.Context, req swarm.InitRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.inits = append(f.calls.inits, req)
	if f.info.LocalNodeState == swarm.LocalNodeStateActive {
		return "", errdefs.ErrAlreadyInSwarm
	}
	fresh := newFakeCluster()
	f.sw = fresh.sw
	f.nodes = fresh.nodes[:1]
	f.nodes[0].Description.Hostname = f.name
	f.info = fresh.info
	f.info.Nodes = 1
	f.clusterErr = nil
	f.refreshClusterInfo()
	return idA, nil
}

func (f *fakeBackend) SwarmJoin(_ context.Context, req swarm.JoinRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.joins = append(f.calls.joins, req)
	if f.info.LocalNodeState == swarm.LocalNodeStateActive {
		return errdefs.ErrAlreadyInSwarm
	}
	if req.JoinToken == "bad" {
		return errdefs.Invalid("invalid join token")
	}
	f.info = swarm.Info{
		NodeID:         "w0rk3r0000000000000000000",
		NodeAddr:       "10.0.0.9",
		LocalNodeState: swarm.LocalNodeStateActive,
	}
	for _, addr := range req.RemoteAddrs {
		f.info.RemoteManagers = append(f.info.RemoteManagers, swarm.Peer{NodeID: idA, Addr: addr})
	}
	f.clusterErr = errdefs.ErrNotManager
	return nil
}

func (f *fakeBackend) SwarmLeave(_ context.Context, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.leaves = append(f.calls.leaves, force)
	if f.info.LocalNodeState != swarm.LocalNodeStateActive {
		return errdefs.ErrNotInSwarm
	}
	if f.info.ControlAvailable && !force {
		return errdefs.Unavailable("You are attempting to leave the swarm on a node that is participating as a manager. Use `--force` to ignore this message.")
	}
	f.info = swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	f.clusterErr = errdefs.ErrNotInSwarm
	return nil
}

func (f *fakeBackend) SwarmInspect(context.Context) (swarm.Swarm, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maybePanic("SwarmInspect")
	if f.clusterErr != nil {
		return swarm.Swarm{}, f.clusterErr
	}
	return f.sw, nil
}

func (f *fakeBackend) SwarmUpdate(_ context.Context, version uint64, spec swarm.Spec, flags SwarmUpdateFlags) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.swarmUpdates = append(f.calls.swarmUpdates, swarmUpdateCall{version, spec, flags})
	if f.clusterErr != nil {
		return f.clusterErr
	}
	if version != f.sw.Version.Index {
		return errdefs.Conflict("update out of sequence")
	}
	f.sw.Spec = spec
	f.sw.Version.Index++
	if flags.RotateWorkerToken {
		f.sw.JoinTokens.Worker = "SWMTKN-1-worker-" + f.sw.Version.String()
	}
	if flags.RotateManagerToken {
		f.sw.JoinTokens.Manager = "SWMTKN-1-manager-" + f.sw.Version.String()
	}
	f.refreshClusterInfo()
	return nil
}

func (f *fakeBackend) Nodes(context.Context) ([]swarm.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.clusterErr != nil {
		return nil, f.clusterErr
	}
	return slices.Clone(f.nodes), nil
}

func (f *fakeBackend) NodeUpdate(_ context.Context, id string, version uint64, spec swarm.NodeSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.nodeUpdates = append(f.calls.nodeUpdates, nodeUpdateCall{id, version, spec})
	if f.clusterErr != nil {
		return f.clusterErr
	}
	for i := range f.nodes {
		n := &f.nodes[i]
		if n.ID != id {
			continue
		}
		if version != n.Version.Index {
			return errdefs.Conflict("update out of sequence")
		}
		n.Spec = spec
		n.Version.Index++
		if spec.Role == swarm.NodeRoleManager && n.ManagerStatus == nil {
			n.ManagerStatus = &swarm.ManagerStatus{Reachability: swarm.ReachabilityReachable, Addr: n.Status.Addr + ":2377"}
		}
		if spec.Role == swarm.NodeRoleWorker {
			n.ManagerStatus = nil
		}
		return nil
	}
	return errdefs.NotFound("node %s not found", id)
}

func (f *fakeBackend) NodeRemove(_ context.Context, id string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls.nodeRemoves = append(f.calls.nodeRemoves, nodeRemoveCall{id, force})
	if f.clusterErr != nil {
		return f.clusterErr
	}
	for i, n := range f.nodes {
		if n.ID != id {
			continue
		}
		if n.Status.State == swarm.NodeStateReady && !force {
			return errdefs.Invalid("node %s is not down and can't be removed", id)
		}
		f.nodes = slices.Delete(f.nodes, i, i+1)
		return nil
	}
	return errdefs.NotFound("node %s not found", id)
}

func (f *fakeBackend) LeaderProxy(*http.Request) http.Handler {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.proxy
}

// recorded returns a copy of the recorded calls.
func (f *fakeBackend) recorded() fakeCalls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeCalls{
		inits:        slices.Clone(f.calls.inits),
		joins:        slices.Clone(f.calls.joins),
		leaves:       slices.Clone(f.calls.leaves),
		swarmUpdates: slices.Clone(f.calls.swarmUpdates),
		nodeUpdates:  slices.Clone(f.calls.nodeUpdates),
		nodeRemoves:  slices.Clone(f.calls.nodeRemoves),
	}
}

// node returns the current state of the node with the full ID id.
func (f *fakeBackend) node(id string) swarm.Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nodes {
		if n.ID == id {
			return n
		}
	}
	return swarm.Node{}
}
