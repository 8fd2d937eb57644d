package raftnode

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer carries Raft over the cluster port's TLS, ALPN-tagged so the
// port's mux routes it here. Both ends present node certificates.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	dialTLS   func() *tls.Config
	accept    func(net.Conn) bool
}

func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		if s.accept == nil || s.accept(c) {
			return c, nil
		}
		c.Close()
	}
}

func (s *streamLayer) Close() error   { return s.ln.Close() }
func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), s.dialTLS())
}
