package netrules

import (
	"errors"
	"net/netip"

	"github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"
)

// Conntrack keeps a forwarded connection on the target its first packet
// was sent to, whatever the rules say later. When a target leaves the
// rules (its task left rotation, its node went Down), its connections'
// entries are deleted: the client's next packet is then matched afresh
// and answered with a reset, where it would otherwise go on to a dead
// machine until TCP gives up (minutes).

// sent is where a port's connections were sent: a task, or another
// node's address and the same port.
type sent struct {
	port uint16
	to   netip.AddrPort
}

// sentTo lists what fs sends where.
func sentTo(fs []Forward) map[sent]bool {
	out := map[sent]bool{}
	for _, f := range fs {
		for _, t := range f.Targets {
			out[sent{f.Port, t}] = true
		}
		for _, n := range f.Remote {
			out[sent{f.Port, netip.AddrPortFrom(n, f.Port)}] = true
		}
	}
	return out
}

// forgetGone deletes the conntrack entries of TCP connections that old
// sent to a target now does not; it returns how many.
func forgetGone(old, now []Forward) (int, error) {
	was, is := sentTo(old), sentTo(now)
	gone := map[sent]bool{}
	for s := range was {
		if !is[s] {
			gone[s] = true
		}
	}
	if len(gone) == 0 {
		return 0, nil
	}
	c, err := conntrack.Dial(nil)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, f := range flows {
		if f.TupleOrig.Proto.Protocol != unix.IPPROTO_TCP {
			continue
		}
		// The reply comes from where the connection was sent.
		to := netip.AddrPortFrom(f.TupleReply.IP.SourceAddress.Unmap(), f.TupleReply.Proto.SourcePort)
		if !gone[sent{f.TupleOrig.Proto.DestinationPort, to}] {
			continue
		}
		if err := c.Delete(f); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
