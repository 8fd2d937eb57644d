package manager

import (
	"context"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/flotilla-org/flotilla/manager/state"
)

// A node that comes back at another address (a restarted instance with a
// new IP, or a daemon started with a new --advertise-addr) says so in its
// heartbeats. The leader then points Raft at the new address (AddVoter with
// the same ID replaces the address of a voter) and records it in the node
// object, from which the manager list sent to every node is built.

// addrMoved reports whether a node's heartbeat announces an address that
// the node object or Raft's configuration does not have yet.
func (m *Manager) addrMoved(n *state.Node, addr string) bool {
	if addr == "" || !validClusterAddr(addr) {
		return false
	}
	if n.Addr != addr || n.ManagerStatus != nil && n.ManagerStatus.Addr != addr {
		return true
	}
	if n.ManagerStatus == nil {
		return false
	}
	s, ok := m.raftServer(n.ID)
	return ok && string(s.Address) != addr
}

func (m *Manager) raftServer(id string) (raft.Server, bool) {
	servers, err := m.raft.Servers()
	if err != nil {
		return raft.Server{}, false
	}
	i := slices.IndexFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
	if i < 0 {
		return raft.Server{}, false
	}
	return servers[i], true
}

// validClusterAddr accepts only a specific IP and a port: an address the
// other managers can dial.
func validClusterAddr(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	p, err := strconv.Atoi(port)
	return ip != nil && !ip.IsUnspecified() && err == nil && p > 0 && p < 65536
}

// followAddr moves a node to its new address in the background, once at a
// time per node; a failure is retried on the node's next heartbeat.
func (m *Manager) followAddr(nodeID, addr string) {
	if _, busy := m.moving.LoadOrStore(nodeID, true); busy {
		return
	}
	go func() {
		defer m.moving.Delete(nodeID)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := m.moveNode(ctx, nodeID, addr); err != nil {
			m.log.Warn("could not record a node's new address; will retry on its next heartbeat", "target_node", nodeID, "addr", addr, "err", err)
		}
	}()
}

func (m *Manager) moveNode(ctx context.Context, nodeID, addr string) error {
	if err := m.requireLeader(); err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	n := m.store.Node(nodeID)
	if n == nil || !m.addrMoved(n, addr) {
		return nil
	}
	if s, ok := m.raftServer(nodeID); ok && string(s.Address) != addr {
		f := m.raft.Raft.AddVoter(s.ID, raft.ServerAddress(addr), 0, 10*time.Second)
		if err := f.Error(); err != nil {
			return err
		}
		m.log.Info("manager moved: raft now reaches it at its new address", "target_node", nodeID, "hostname", n.Description.Hostname, "old", s.Address, "new", addr)
	}
	if n.Addr != addr || n.ManagerStatus != nil && n.ManagerStatus.Addr != addr {
		if err := m.propose(ctx, state.NewPatch(state.TableNodes, nodeID, state.PatchNodeAddr, addr)); err != nil {
			return err
		}
		m.log.Info("node moved to a new address", "target_node", nodeID, "hostname", n.Description.Hostname, "old", n.Addr, "new", addr)
	}
	return nil
}
