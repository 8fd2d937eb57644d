package hostsim

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHostsReachEachOtherAndGo makes two hosts: this machine reaches each
// one's address, a cut host is unreachable, and Close leaves no
// namespace or interface behind.
func TestHostsReachEachOtherAndGo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	prefix := fmt.Sprintf("fhs-%d-", os.Getpid())
	n, err := New(prefix, fmt.Sprintf("fhs%d", os.Getpid()), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Exec runs a program on the host: it sees the host's address.
	out, err := exec.Command(n.Exec(1)[0], append(n.Exec(1)[1:], "ip", "-4", "-o", "addr", "show", "eth0")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), n.Addrs[1]+"/24") {
		t.Fatalf("host 2's address: %v: %s", err, out)
	}
	// A refused connection proves the host answered.
	reach := func(addr string) error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "9"), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if strings.Contains(err.Error(), "refused") {
			return nil
		}
		return err
	}
	for _, a := range n.Addrs {
		if err := reach(a); err != nil {
			t.Fatalf("host %s: %v", a, err)
		}
	}
	if err := n.Cut(1); err != nil {
		t.Fatal(err)
	}
	if err := reach(n.Addrs[1]); err == nil {
		t.Fatal("a cut host still answers")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), prefix) {
		t.Fatalf("namespaces left: %s", out)
	}
	if err := exec.Command("ip", "link", "show", n.HostIf).Run(); err == nil {
		t.Fatalf("%s left", n.HostIf)
	}
}
