package mesh

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// startUDPTask answers each datagram with "name:payload".
func startUDPTask(t *testing.T, n *node, name string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	n.udpTasks[name] = pc.LocalAddr().String()
	go func() {
		buf := make([]byte, 2048)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(name+":"+string(buf[:k])), from)
		}
	}()
}

func udpRoute(port uint32, nodes ...*node) nodeapi.Route {
	r := nodeapi.Route{ServiceID: "dns", ServiceName: "dns",
		Ports: []swarm.PortConfig{{Protocol: "udp", TargetPort: 53, PublishedPort: port, PublishMode: swarm.PortConfigPublishModeIngress}}}
	for _, n := range nodes {
		for id := range n.udpTasks {
			r.Backends = append(r.Backends, nodeapi.Backend{TaskID: id, NodeID: n.id, NodeAddr: n.relay.Addr().String()})
		}
	}
	return r
}

func freeUDPPort(t *testing.T) uint32 {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return uint32(pc.LocalAddr().(*net.UDPAddr).Port)
}

// exchange sends one datagram from a new client socket and reads the reply.
func exchange(t *testing.T, port uint32, msg string) (string, error) {
	t.Helper()
	c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	k, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}

func TestMeshUDPAcrossNodes(t *testing.T) {
	a, b := newTestNode(t, "A"), newTestNode(t, "B")
	startUDPTask(t, a, "u1")
	startUDPTask(t, b, "u2")
	port := freeUDPPort(t)
	a.mesh.Update([]nodeapi.Route{udpRoute(port, a, b)})
	seen := map[string]int{}
	for i := range 6 {
		msg := fmt.Sprintf("q%d", i)
		got, err := exchange(t, port, msg)
		if err != nil {
			t.Fatalf("datagram through the mesh: %v", err)
		}
		name, payload, _ := strings.Cut(got, ":")
		if payload != msg {
			t.Errorf("reply %q; want the payload %q back unchanged", got, msg)
		}
		seen[name]++
	}
	if seen["u1"] == 0 || seen["u2"] == 0 {
		t.Errorf("flows went to %v; want both the local and the remote task", seen)
	}
	// No task: datagrams are dropped, not answered.
	a.mesh.Update([]nodeapi.Route{udpRoute(port)})
	if got, err := exchange(t, port, "x"); err == nil {
		t.Errorf("a datagram with no task running was answered %q", got)
	}
}
