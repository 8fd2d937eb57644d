// Package nodeapi is the node-to-node RPC API on the cluster port: joining,
// worker sessions (heartbeats), certificate renewal, Raft membership, and
// forwarding of Engine API writes to the leader. It is HTTP/JSON over the
// cluster port's mutual TLS; the peer's certificate says who is calling.
package nodeapi

import (
	"net/netip"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Paths.
const (
	PathCA        = "/rpc/ca"
	PathJoin      = "/rpc/join"
	PathHeartbeat = "/rpc/heartbeat"
	PathRenew     = "/rpc/renew"
	PathRaftJoin  = "/rpc/raft/join"
	PathRaftLeave = "/rpc/raft/leave"
	// PathAPI prefixes Engine API requests a follower forwards to the leader.
	PathAPI = "/api"
)

// HeaderForwarded marks a request a manager already forwarded once, so a
// request never bounces between managers during an election.
const HeaderForwarded = "X-Flotilla-Forwarded"

// HeaderStaleRead marks a read answered from a manager's own replica
// without a confirmed leader (no leader known, quorum lost, or leadership
// in doubt): the answer may miss recent writes. Reads without it come from
// a leader that a quorum still follows.
const HeaderStaleRead = "X-Flotilla-Stale-Read"

// HeaderPeer carries the original caller's node ID when a manager forwards
// a node's RPC to the leader; the leader trusts it only from a manager.
const HeaderPeer = "X-Flotilla-Peer"

// JoinRequest asks a manager to admit a node.
type JoinRequest struct {
	Token        string
	CSR          []byte // PEM; the node keeps its private key
	Hostname     string
	Addr         string // advertise address host:port of the node's cluster port
	Availability swarm.NodeAvailability
	Description  swarm.NodeDescription
}

// JoinResponse admits a node: its identity, certificate and the managers.
type JoinResponse struct {
	NodeID    string
	ClusterID string
	Role      swarm.NodeRole
	CertPEM   []byte
	CAPEM     []byte
	Managers  []swarm.Peer
}

// HeartbeatRequest is a node's periodic report on its session.
type HeartbeatRequest struct {
	Addr string
	// Description is what the node is (hostname, platform, resources,
	// engine). The node leaves it out while the manager it beats to said,
	// in its last answer, that the swarm holds this very description
	// (HeartbeatResponse.DescriptionHash): as SwarmKit's sessions, a beat
	// then carries no more than the node's address.
	Description *swarm.NodeDescription `json:",omitempty"`
}

// HeartbeatResponse tells the node how often to report, where the
// managers are, and which role it should hold.
type HeartbeatResponse struct {
	Period   time.Duration
	Managers []swarm.Peer
	Role     swarm.NodeRole
	// Leader names the leader and its Raft term ("nodeID/term"): when it
	// changes, the node sends all its task statuses again, since reports
	// the old leader took may never have been written.
	Leader string
	// DescriptionHash is DescriptionHash of the description the swarm
	// holds for the node. Managers before it never answer it, so their
	// nodes always send the description.
	DescriptionHash string `json:",omitempty"`
}

// RenewRequest asks for a certificate for the node's desired role.
type RenewRequest struct {
	CSR []byte
}

// RenewResponse carries the new certificate.
type RenewResponse struct {
	CertPEM []byte
	Role    swarm.NodeRole
}

// RaftJoinRequest asks the leader to add the caller as a Raft voter; the
// caller's Raft is already listening on Addr.
type RaftJoinRequest struct {
	Addr string
}

// Error is the JSON error body, as the Engine API's. Code, when set, names
// an answer the caller must tell apart from others of the same status.
type Error struct {
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
}

// Paths of the task session.
const (
	PathAssignments = "/rpc/assignments"
	PathTaskStatus  = "/rpc/taskstatus"
	PathLogs        = "/rpc/logs" // served by every node: its tasks' logs
	PathRoutes      = "/rpc/routes"
	// PathPeers is the other nodes' addresses, long-polled only by nodes
	// whose mesh takes connections between nodes in the kernel.
	PathPeers = "/rpc/peers"
	// PathRelay carries heartbeats and status reports that nodes sent a
	// follower on to the leader, many nodes' in one request (managers
	// only).
	PathRelay = "/rpc/relay"
)

// RelayRequest is what a follower took from its nodes since its last
// relay.
type RelayRequest struct {
	Beats    []RelayedBeat   `json:",omitempty"`
	Statuses []RelayedStatus `json:",omitempty"`
	Index    uint64          `json:",omitempty"` // the largest TaskStatusRequest.Index of the statuses
}

// RelayedBeat is one node's heartbeat.
type RelayedBeat struct {
	Node string
	Beat HeartbeatRequest
}

// RelayedStatus is one node's status reports.
type RelayedStatus struct {
	Node    string
	Updates []TaskStatusUpdate
}

// RelayResponse names the nodes whose part the leader refused (a node
// removed or unknown to it, or reports it could not take yet), with the
// error each would have had directly: beats and status reports apart, as
// a beat is never held up by reports.
type RelayResponse struct {
	Refused         map[string]Refusal `json:",omitempty"` // beats
	StatusesRefused map[string]Refusal `json:",omitempty"`
	// BareBeats says the leader takes beats without a description as
	// "unchanged". A follower fills the description in for a leader that
	// has not said so: an earlier leader would read a beat without one as
	// a node that lost its hostname and resources.
	BareBeats bool `json:",omitempty"`
}

// Refusal is an error answer carried inside another: its HTTP status and
// body.
type Refusal struct {
	Status int
	Error
}

// AssignmentsRequest long-polls for the node's tasks: the answer comes as
// soon as they differ from Known (a fingerprint), or after a while anyway.
type AssignmentsRequest struct {
	Known string
	// Index is the store index of the last answer the node had. Nodes
	// talk to any manager, and a follower's replica may lag: one behind
	// Index waits to catch up, so a node that moves between managers
	// never sees an older state than it already acted on.
	Index uint64 `json:",omitempty"`
}

// Assignment is one task the node should know about.
type Assignment struct {
	Task        swarm.Task
	ServiceName string
	// Ports the node exposes the task on to the routing mesh.
	Ports []swarm.PortConfig `json:",omitempty"`
	// Files are the data of the secrets and configs the task references
	// (its ContainerSpec says where each goes), sent only for a task the
	// node is to start. The agent keeps them in memory-backed files and
	// never in its task record.
	Files []TaskFile `json:",omitempty"`
}

// TaskFile is the data of one secret or config.
type TaskFile struct {
	Kind string // "secret" or "config"
	ID   string
	Data []byte
}

// Kinds of TaskFile.
const (
	FileSecret = "secret"
	FileConfig = "config"
)

// AssignmentsResponse is the node's whole task set.
type AssignmentsResponse struct {
	Fingerprint string
	Index       uint64 // the store index the answer was built from
	Tasks       []Assignment
}

// TaskStatusUpdate reports a task's observed state.
type TaskStatusUpdate struct {
	TaskID string
	Status swarm.TaskStatus
}

// TaskStatusRequest carries a batch of updates.
type TaskStatusRequest struct {
	Updates []TaskStatusUpdate
	// Index is the store index of the node's latest assignments. A
	// manager takes the reports once its replica holds it: a report may be
	// of a task assigned in a write that another manager applied first
	// (even the leader's own replica can trail its followers').
	Index uint64 `json:",omitempty"`
}

// LogsRequest asks a node for the logs of some of its tasks.
type LogsRequest struct {
	TaskIDs    []string
	Follow     bool
	Tail       int
	Since      time.Time
	Timestamps bool
}

// LogLine is one line of a LogsRequest's answer, sent as JSON lines.
type LogLine struct {
	TaskID string
	Stream int
	Time   time.Time
	Line   []byte
}

// RoutesRequest long-polls for the routing mesh's table: the answer comes
// as soon as it differs from Known (a fingerprint), or after a while anyway.
type RoutesRequest struct {
	Known string
	Index uint64 `json:",omitempty"` // as AssignmentsRequest.Index
}

// RoutesResponse is the whole table: every service with published ingress
// ports, and the tasks that may take its connections.
type RoutesResponse struct {
	Fingerprint string
	Index       uint64 // the store index the table was built from
	Services    []Route
	// Networks are the swarm networks other than ingress: their subnets
	// are captured on every node and sent to the mesh.
	Networks []RouteNetwork `json:",omitempty"`
}

// PeersRequest long-polls for the nodes' addresses, as RoutesRequest.
type PeersRequest struct {
	Known string
	Index uint64 `json:",omitempty"`
}

// PeersResponse are the hosts of the Ready nodes' cluster addresses: a
// node whose mesh takes connections between nodes in the kernel sends
// connections from them to its own tasks only. Apart from the routing
// table, so that nodes joining do not make every node fetch the table.
type PeersResponse struct {
	Fingerprint string
	Index       uint64
	Peers       []string
}

// RouteNetwork is a swarm network as the nodes need it.
type RouteNetwork struct {
	ID, Name string
	Subnet   netip.Prefix
	Internal bool `json:",omitempty"`
}

// Route is one service in the mesh.
type Route struct {
	ServiceID   string
	ServiceName string
	Ports       []swarm.PortConfig // ingress ports, published port assigned
	// ProxyProtocol is "", "v1" or "v2": the mesh sends a PROXY protocol
	// header with the client's address before the payload.
	ProxyProtocol string `json:",omitempty"`
	// Mode is the endpoint mode: "vip" (names resolve to VIPs) or
	// "dnsrr" (names resolve to the tasks' addresses).
	Mode swarm.ResolutionMode `json:",omitempty"`
	// VIPs are the service's virtual addresses, one per network it is on
	// (Addr without the prefix length).
	VIPs []NetAddr `json:",omitempty"`
	// Aliases are extra names of the service on a network.
	Aliases  []NetAlias `json:",omitempty"`
	Backends []Backend
}

// NetAddr is an address on a swarm network.
type NetAddr struct {
	Network string // network ID
	Addr    netip.Addr
}

// NetAlias is a name a service also answers to on one network.
type NetAlias struct {
	Network string
	Name    string
}

// Backend is a task that is running on a Ready node.
type Backend struct {
	TaskID   string
	NodeID   string
	NodeAddr string // the node's cluster address (host:port)
	// Addrs are the task's addresses on its networks.
	Addrs []NetAddr `json:",omitempty"`
}
