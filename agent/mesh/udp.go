package mesh

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// UDP has no connections: the mesh keeps a flow per client address, sent
// to one task, and forgets it after flowIdle without a datagram either
// way (as a NAT's UDP timeout). Datagrams for a task on another node go
// through the relay's stream, each with a 2-byte length in front.

const (
	flowIdle    = 60 * time.Second
	maxDatagram = 65535
)

type udpListener struct {
	pc    *net.UDPConn
	route *routeRef
	mu    sync.Mutex
	flows map[string]*flow // by client address
}

// routeRef holds the current route of a published port.
type routeRef struct {
	mu sync.Mutex
	r  *route
}

func (rr *routeRef) load() *route {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	return rr.r
}

func (rr *routeRef) store(r *route) {
	rr.mu.Lock()
	rr.r = r
	rr.mu.Unlock()
}

// flow is one client's datagrams to one task.
type flow struct {
	task string
	up   datagramConn
	last time.Time
	mu   sync.Mutex
}

// datagramConn sends and receives whole datagrams: a UDP socket to a local
// task, or framed datagrams over a relay stream.
type datagramConn interface {
	send(b []byte) error
	recv(buf []byte) (int, error)
	Close() error
}

type udpConn struct{ *net.UDPConn }

func (c udpConn) send(b []byte) error          { _, err := c.Write(b); return err }
func (c udpConn) recv(buf []byte) (int, error) { return c.Read(buf) }

// framedConn carries datagrams over a stream, each after its length.
type framedConn struct {
	net.Conn
	wmu sync.Mutex
}

func (c *framedConn) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	hdr := binary.BigEndian.AppendUint16(nil, uint16(len(b)))
	_, err := c.Write(append(hdr, b...))
	return err
}

func (c *framedConn) recv(buf []byte) (int, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
		return 0, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > len(buf) {
		return 0, errors.New("datagram larger than the buffer")
	}
	return io.ReadFull(c.Conn, buf[:n])
}

// serveUDP reads client datagrams and sends each along its flow.
func (m *Mesh) serveUDP(l *udpListener) {
	buf := make([]byte, maxDatagram)
	go m.expireFlows(l)
	for {
		n, client, err := l.pc.ReadFromUDP(buf)
		if err != nil {
			return // closed
		}
		f := m.flowFor(l, client)
		if f == nil {
			continue // no task runs: dropped, as a closed port would
		}
		f.mu.Lock()
		f.last = time.Now()
		f.mu.Unlock()
		if err := f.up.send(buf[:n]); err != nil {
			m.dropFlow(l, client.String(), f)
		}
	}
}

// flowFor returns the client's flow, opening one to a task in turn.
func (m *Mesh) flowFor(l *udpListener, client *net.UDPAddr) *flow {
	key := client.String()
	l.mu.Lock()
	f := l.flows[key]
	l.mu.Unlock()
	if f != nil {
		return f
	}
	r := l.route.load()
	n := uint64(len(r.backends))
	if n == 0 {
		return nil
	}
	start := r.next.Add(1)
	for i := uint64(0); i < min(n, maxTries); i++ {
		b := r.backends[(start+i)%n]
		if !m.inTable(b.TaskID) {
			continue
		}
		up, err := m.dialDatagram(b, r, client, l.pc.LocalAddr())
		if err != nil {
			m.cfg.Log.Debug("routing mesh: task unreachable over udp, trying another", "service", r.service, "task", b.TaskID, "err", err)
			continue
		}
		f = &flow{task: b.TaskID, up: up, last: time.Now()}
		l.mu.Lock()
		l.flows[key] = f
		l.mu.Unlock()
		go m.replies(l, client, f)
		return f
	}
	return nil
}

// replies sends the task's datagrams back to the client until the flow
// closes.
func (m *Mesh) replies(l *udpListener, client *net.UDPAddr, f *flow) {
	buf := make([]byte, maxDatagram)
	for {
		n, err := f.up.recv(buf)
		if err != nil {
			m.dropFlow(l, client.String(), f)
			return
		}
		f.mu.Lock()
		f.last = time.Now()
		f.mu.Unlock()
		if _, err := l.pc.WriteToUDP(buf[:n], client); err != nil {
			m.dropFlow(l, client.String(), f)
			return
		}
	}
}

func (m *Mesh) dropFlow(l *udpListener, key string, f *flow) {
	l.mu.Lock()
	if l.flows[key] == f {
		delete(l.flows, key)
	}
	l.mu.Unlock()
	f.up.Close()
}

// expireFlows forgets idle flows, and flows to tasks that left the table.
func (m *Mesh) expireFlows(l *udpListener) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range tick.C {
		m.mu.Lock()
		closed := m.closed || m.udp[l.pc.LocalAddr().(*net.UDPAddr).Port] != l
		m.mu.Unlock()
		l.mu.Lock()
		for key, f := range l.flows {
			f.mu.Lock()
			idle := time.Since(f.last) > flowIdle
			f.mu.Unlock()
			if closed || idle || !m.inTable(f.task) {
				delete(l.flows, key)
				f.up.Close()
			}
		}
		l.mu.Unlock()
		if closed {
			return
		}
	}
}

func (m *Mesh) inTable(task string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.closed && m.backends[task]
}

// dialDatagram opens a flow's way to a task: a UDP socket when the task is
// on this node, a framed relay stream otherwise.
func (m *Mesh) dialDatagram(b nodeapi.Backend, r *route, client, dst net.Addr) (datagramConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	h := relayHeader{Task: b.TaskID, Port: r.target, Client: client.String(), Dst: dst.String()}
	if b.NodeID == m.cfg.NodeID {
		return m.dialLocalUDP(ctx, h)
	}
	c, err := m.dialRelay(ctx, b.NodeAddr, h)
	if err != nil {
		return nil, err
	}
	return &framedConn{Conn: c}, nil
}

func (m *Mesh) dialLocalUDP(ctx context.Context, h relayHeader) (datagramConn, error) {
	addr, err := m.cfg.Local(ctx, h.Task, h.Port)
	if err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, err
	}
	return udpConn{c}, nil
}

// relayUDP serves a relayed UDP flow: framed datagrams from the stream to
// the local task and back, until either side ends.
func (m *Mesh) relayUDP(c net.Conn, h relayHeader) {
	up, ok := answerRelay(c, h, m.dialLocalUDP)
	if !ok {
		return
	}
	stream := &framedConn{Conn: c}
	done := make(chan struct{}, 2)
	pump := func(from, to datagramConn) {
		buf := make([]byte, maxDatagram)
		for {
			n, err := from.recv(buf)
			if err != nil || to.send(buf[:n]) != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go pump(stream, up)
	go pump(up, stream)
	<-done
	c.Close()
	up.Close()
	<-done
}

// updateUDP opens and closes the UDP listeners (m.mu held).
func (m *Mesh) updateUDP(want map[uint32]*route) {
	for port, l := range m.udp {
		if want[uint32(port)] == nil {
			l.pc.Close()
			delete(m.udp, port)
		}
	}
	for port, r := range want {
		l := m.udp[int(port)]
		if l == nil {
			addr := net.JoinHostPort(m.cfg.BindHost, strconv.Itoa(int(port)))
			ua, err := net.ResolveUDPAddr("udp", addr)
			var pc *net.UDPConn
			if err == nil {
				pc, err = net.ListenUDP("udp", ua)
			}
			if err != nil {
				m.listenFailed(published{port, "udp"}, addr, r.service, err)
				continue
			}
			delete(m.failed, published{port, "udp"})
			l = &udpListener{pc: pc, route: &routeRef{}, flows: map[string]*flow{}}
			m.udp[int(port)] = l
			l.route.store(r)
			go m.serveUDP(l)
			continue
		}
		l.route.store(r)
	}
}
