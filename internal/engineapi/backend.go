package engineapi

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/swarm"
)

// Backend is what the Engine API needs from the daemon. This package owns
// the interface; internal/daemon implements it.
//
// Methods that read or change cluster state return errdefs.ErrNotInSwarm on
// a node outside a swarm and errdefs.ErrNotManager on a worker. Every error
// should be classified with internal/errdefs so it maps to the right HTTP
// status; unclassified errors become 500.
type Backend interface {
	// SwarmInfo is the Swarm section of /info for the local node (NodeID,
	// NodeAddr, LocalNodeState, ControlAvailable, Error, RemoteManagers,
	// Nodes, Managers, Cluster). Valid in any state.
	SwarmInfo(ctx context.Context) swarm.Info
	// NodeName is the hostname this node reports.
	NodeName() string

	// SwarmInit creates a new swarm with this node as its first manager and
	// returns the new node ID.
	SwarmInit(ctx context.Context, req swarm.InitRequest) (nodeID string, err error)
	// SwarmJoin joins an existing swarm.
	SwarmJoin(ctx context.Context, req swarm.JoinRequest) error
	// SwarmLeave leaves the swarm; force allows a manager to leave.
	SwarmLeave(ctx context.Context, force bool) error

	// SwarmInspect returns the cluster object with its join tokens.
	SwarmInspect(ctx context.Context) (swarm.Swarm, error)
	// SwarmUpdate replaces the cluster spec if version is current.
	SwarmUpdate(ctx context.Context, version uint64, spec swarm.Spec, flags SwarmUpdateFlags) error

	// Nodes returns every node of the cluster. Filtering and resolution of
	// names and ID prefixes are done by this package.
	Nodes(ctx context.Context) ([]swarm.Node, error)
	// NodeUpdate replaces the spec of the node with the full ID id if
	// version is current.
	NodeUpdate(ctx context.Context, id string, version uint64, spec swarm.NodeSpec) error
	// NodeRemove removes the node with the full ID id from the swarm.
	NodeRemove(ctx context.Context, id string, force bool) error

	// ServiceCreate validates and stores a new service.
	ServiceCreate(ctx context.Context, spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error)
	// Services returns every service; withStatus fills ServiceStatus
	// (running and desired task counts).
	Services(ctx context.Context, withStatus bool) ([]swarm.Service, error)
	// ServiceUpdate replaces the spec of the service with the full ID id if
	// version is current; rollback restores the previous spec instead.
	ServiceUpdate(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec, rollback bool) (swarm.ServiceUpdateResponse, error)
	// ServiceRemove removes a service and shuts its tasks down.
	ServiceRemove(ctx context.Context, id string) error
	// Tasks returns every task; upToDateOnly keeps those running their
	// service's current spec (the docker CLI's _up-to-date filter).
	Tasks(ctx context.Context, upToDateOnly bool) ([]swarm.Task, error)
	// NetworkCreate validates and stores a new swarm-scope network and
	// returns its ID.
	NetworkCreate(ctx context.Context, spec swarm.NetworkSpec) (string, error)
	// Networks returns every network of the cluster; this package
	// filters them and resolves names and ID prefixes.
	Networks(ctx context.Context) ([]swarm.Network, error)
	// NetworkRemove removes the network with the full ID id, unless a
	// service uses it.
	NetworkRemove(ctx context.Context, id string) error

	// SecretCreate validates and stores a new secret and returns its ID.
	SecretCreate(ctx context.Context, spec swarm.SecretSpec) (string, error)
	// Secrets returns every secret, never with its data; this package
	// filters them and resolves names and ID prefixes.
	Secrets(ctx context.Context) ([]swarm.Secret, error)
	// SecretUpdate changes the labels of the secret with the full ID id
	// if version is current; nothing else may change.
	SecretUpdate(ctx context.Context, id string, version uint64, spec swarm.SecretSpec) error
	// SecretRemove removes a secret no service uses.
	SecretRemove(ctx context.Context, id string) error
	// ConfigCreate, Configs, ConfigUpdate and ConfigRemove are the same
	// for configs, whose data Configs does return.
	ConfigCreate(ctx context.Context, spec swarm.ConfigSpec) (string, error)
	Configs(ctx context.Context) ([]swarm.Config, error)
	ConfigUpdate(ctx context.Context, id string, version uint64, spec swarm.ConfigSpec) error
	ConfigRemove(ctx context.Context, id string) error

	// Logs streams the logs of a service's or a task's tasks.
	Logs(ctx context.Context, sel LogSelector, opts LogOptions, out LogSink) error

	// LeaderProxy returns a handler that forwards a request to the Raft
	// leader when this node is a follower manager. It returns nil when the
	// request should be served here (this node is the leader, or it is not a
	// manager and the request will fail locally with a clear error).
	//
	// For reads of cluster state (GET) the Backend should return nil when
	// no leader is known, so they are answered from the local replica
	// instead of failing.
	LeaderProxy(r *http.Request) http.Handler
}

// SwarmUpdateFlags are the rotation switches of POST /swarm/update.
type SwarmUpdateFlags struct {
	RotateWorkerToken      bool
	RotateManagerToken     bool
	RotateManagerUnlockKey bool
}
