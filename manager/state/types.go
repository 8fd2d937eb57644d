// Package state is the cluster's replicated state: in-memory tables of
// cluster, node, service, task, network, secret and config objects. It knows
// nothing of Raft: every write is a batch of Ops that the caller proposes
// through whatever replication it uses, and the FSM applies here.
package state

import (
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Objects are stored as Docker's wire types plus the few fields only the
// managers see. Keeping one shape avoids a second copy of every type and a
// conversion layer between state and API.

// Cluster is the one cluster object: its spec, root CA and join secrets.
type Cluster struct {
	swarm.ClusterInfo
	RootCACertPEM []byte `json:",omitempty"`
	RootCAKeyPEM  []byte `json:",omitempty"`
	WorkerToken   string `json:",omitempty"`
	ManagerToken  string `json:",omitempty"`
	// UnlockKey is the managers' key encryption key (SWMKEY-1-...) while
	// autolock is on. It lives in the replicated state so every manager
	// learns it and re-wraps its keys when it changes.
	UnlockKey string `json:",omitempty"`
	// RemovedNodes lists node IDs removed from the cluster; their
	// certificates are refused from then on.
	RemovedNodes []string `json:",omitempty"`
	// NodeDownRemoval is how long a node may stay Down before the leader
	// removes it (0: never). Docker's swarm.Spec has no such field; the API
	// shows it as the spec label NodeDownRemovalLabel.
	NodeDownRemoval time.Duration `json:",omitempty"`
	// IngressMade records that the managers made the ingress network, at
	// init or, for a cluster from before networks, when a leader found it
	// missing: it is made once, never again after a user removed it.
	IngressMade bool `json:",omitempty"`
}

// Node is a cluster member. Spec.Role is the role the user asked for;
// Role is the role the node's certificate currently carries.
type Node struct {
	swarm.Node
	Role swarm.NodeRole `json:",omitempty"`
	// Addr is the host:port of the node's cluster port, where Raft reaches
	// it once it is a manager.
	Addr string `json:",omitempty"`
	// StateSince is when Status.State last changed (the proposer's clock),
	// so "Down for how long" survives a change of leader.
	StateSince time.Time `json:",omitzero"`
}

// GetID returns the object's ID.
func (c *Cluster) GetID() string { return c.ID }

// GetID returns the object's ID.
func (n *Node) GetID() string { return n.ID }

// Copy returns a deep copy (through JSON) so callers can modify it freely.
func (n *Node) Copy() *Node {
	var out Node
	mustCopy(n, &out)
	return &out
}

// Copy returns a deep copy.
func (c *Cluster) Copy() *Cluster {
	var out Cluster
	mustCopy(c, &out)
	return &out
}
