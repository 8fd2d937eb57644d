package mesh

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/flotilla-org/flotilla/agent/netrules"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// The kernel path: the share of a published port's connections that goes
// to this node's own tasks is sent there by DNAT rules (Config.Kernel),
// so its bytes never pass through this process; the listener takes the
// rest to other nodes' tasks. A service that asks for the PROXY protocol
// stays in user space (the header is written by the mesh), as do UDP
// ports. The rules follow the table: they are rewritten after every
// Update, from a goroutine of their own (a task's address may take an
// engine round trip to learn).

// Publisher writes the kernel path's rules (netrules.Rules).
type Publisher interface {
	Publish([]netrules.Forward) error
}

// kernelRetry is how soon rules are rewritten when a local task's address
// could not be learned (a container just started).
const kernelRetry = time.Second

// kernelPort is what the kernel takes of one published port: the tasks
// it forwards to, for the host's own clients (a task on loopback is
// reached from the host only) and for the others (every target but a
// loopback one).
type kernelPort struct {
	forHost, forOthers map[string]bool
	// forBoth is their union, for a client on one of the host's own
	// addresses other than loopback (kernelTook allocates nothing).
	forBoth map[string]bool
}

// Between says whether the mesh takes connections between nodes in the
// kernel (Config.Between): it then needs SetPeers.
func (m *Mesh) Between() bool { return m.cfg.Between && m.cfg.Kernel != nil }

// SetPeers sets the cluster's nodes (their cluster addresses' hosts):
// with Config.Between, their connections to a published port go to this
// node's tasks only.
func (m *Mesh) SetPeers(addrs []string) {
	var ps []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParseAddr(a); err == nil && p.Unmap() != m.cfg.Self {
			ps = append(ps, p.Unmap())
		}
	}
	m.mu.Lock()
	m.peers = ps
	m.mu.Unlock()
	if m.cfg.Kernel != nil {
		m.kick()
	}
}

// TaskLeaving says a task of this node stops: the kernel path's rules are
// rewritten without it (its address is no longer given) rather than
// after the managers' table drops it, so no new connection meets a dead
// task. It does not block.
func (m *Mesh) TaskLeaving() {
	if m.cfg.Kernel != nil {
		m.kick()
	}
}

// kick asks the kernel loop to rewrite the rules.
func (m *Mesh) kick() {
	select {
	case m.kernelKick <- struct{}{}:
	default:
	}
}

// kernelLoop rewrites the rules when the table changes, until the mesh
// closes; then it removes them, so a stopped node serves nothing.
func (m *Mesh) kernelLoop() {
	defer close(m.kernelDone)
	var last string
	var lastErr string
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		if m.cfg.kernelPassed != nil {
			select {
			case m.cfg.kernelPassed <- struct{}{}:
			default:
			}
		}
		select {
		case <-m.kernelKick:
		case <-retry.C:
		case <-m.kernelStop:
			// A failed publish may have left part of its rules (the chain
			// made, a rule refused): remove whatever was tried.
			if last != "" || lastErr != "" {
				if err := m.cfg.Kernel.Publish(nil); err != nil {
					m.cfg.Log.Warn("routing mesh: cannot remove the published ports' nat rules", "err", err)
				}
			}
			return
		}
		fs, taken, incomplete := m.forwards()
		if incomplete {
			retry.Reset(kernelRetry)
		}
		key := fmt.Sprint(fs)
		if key == last && lastErr == "" {
			m.setKernel(taken)
			continue
		}
		// Forget what the kernel took before the rules change, so the
		// listener does not skip tasks the new rules no longer reach.
		m.setKernel(nil)
		if err := m.cfg.Kernel.Publish(fs); err != nil {
			if err.Error() != lastErr {
				m.cfg.Log.Warn("routing mesh: cannot set the published ports' nat rules; connections go through the mesh in user space", "err", err)
			}
			lastErr, last = err.Error(), ""
			retry.Reset(10 * kernelRetry)
			continue
		}
		lastErr, last = "", key
		m.setKernel(taken)
	}
}

func (m *Mesh) setKernel(taken map[uint32]kernelPort) {
	m.mu.Lock()
	m.kernel = taken
	m.mu.Unlock()
}

// forwards are the rules for the current table: for each published TCP
// port, the local tasks that listen where the kernel can reach them.
// incomplete says a task's address could not be learned yet.
func (m *Mesh) forwards() (fs []netrules.Forward, taken map[uint32]kernelPort, incomplete bool) {
	type local struct {
		port  uint32
		route *route
	}
	var ports []local
	m.mu.Lock()
	for port, l := range m.listeners {
		if r := l.route.Load(); r != nil && r.proxy == "" {
			ports = append(ports, local{port, r})
		}
	}
	var peers []netip.Addr
	if m.cfg.Between {
		peers = m.peers
	}
	m.mu.Unlock()
	slices.SortFunc(ports, func(a, b local) int { return int(a.port) - int(b.port) })
	dst, _ := netip.ParseAddr(m.cfg.BindHost)
	taken = map[uint32]kernelPort{}
	for _, p := range ports {
		f := netrules.Forward{Port: uint16(p.port), Dst: dst, Total: len(p.route.backends), Src: m.cfg.Self, Peers: peers, Localnet: m.cfg.Between}
		kp := kernelPort{forHost: map[string]bool{}, forOthers: map[string]bool{}}
		for _, b := range p.route.backends {
			if b.NodeID != m.cfg.NodeID {
				if a := m.remoteTarget(b); a.IsValid() {
					f.Remote = append(f.Remote, a)
					kp.forOthers[b.TaskID] = true
				}
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
			addr, err := m.cfg.Local(ctx, b.TaskID, p.route.target)
			cancel()
			ap, perr := netip.ParseAddrPort(addr)
			if err != nil || perr != nil || !ap.Addr().Unmap().Is4() {
				incomplete = incomplete || err != nil
				continue
			}
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			// A loopback task takes other hosts' connections only with
			// route_localnet (Localnet).
			if ap.Addr().IsLoopback() {
				kp.forHost[b.TaskID] = true
			}
			if !ap.Addr().IsLoopback() || f.Localnet {
				kp.forOthers[b.TaskID] = true
			}
			f.Targets = append(f.Targets, ap)
		}
		kp.forBoth = maps.Clone(kp.forHost)
		maps.Copy(kp.forBoth, kp.forOthers)
		if len(f.Targets)+len(f.Remote) > 0 {
			fs = append(fs, f)
			taken[p.port] = kp
		}
	}
	return fs, taken, incomplete
}

// kernelTook are the tasks the kernel already gave their share of a
// port's connections from clients like this one: the listener balances
// over the others. A loopback target gets only the host's own clients,
// any other target all but loopback ones.
func (m *Mesh) kernelTook(port uint32, client net.Conn) map[string]bool {
	m.mu.Lock()
	kp, ok := m.kernel[port]
	m.mu.Unlock()
	if !ok {
		return nil
	}
	from, local := addrOf(client.RemoteAddr()), addrOf(client.LocalAddr())
	switch {
	case from.IsLoopback():
		return kp.forHost
	case from == local:
		return kp.forBoth
	}
	return kp.forOthers
}

// remoteTarget is where the kernel path between nodes sends a share for
// another node's task: its node's address, or nothing (the share stays
// with the listener) when that is not a host of its own.
func (m *Mesh) remoteTarget(b nodeapi.Backend) netip.Addr {
	if !m.cfg.Between {
		return netip.Addr{}
	}
	host, _, err := net.SplitHostPort(b.NodeAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if a = a.Unmap(); err != nil || !a.Is4() || a.IsLoopback() || a == m.cfg.Self {
		return netip.Addr{}
	}
	return a
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
