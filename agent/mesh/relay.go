package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/flotilla-org/flotilla/agent/driver"
)

// A relayed connection starts with one JSON line naming the task and the
// client (relayHeader); the relay answers one line, "ok" once it reached
// the task or "error: why", and from then on bytes flow both ways.

const (
	maxHeader     = 4096
	headerTimeout = 5 * time.Second
)

type relayHeader struct {
	Task   string
	Port   driver.Port
	Proxy  string `json:",omitempty"`
	Client string // the client's address, for the PROXY header
	Dst    string // the address the client connected to
}

func (m *Mesh) dialRelay(ctx context.Context, addr string, h relayHeader) (net.Conn, error) {
	c, err := m.cfg.DialPeer(ctx, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	b, _ := json.Marshal(h)
	if _, err := c.Write(append(b, '\n')); err != nil {
		c.Close()
		return nil, err
	}
	line, err := readLine(c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("relay at %s: %w", addr, err)
	}
	if line != "ok" {
		c.Close()
		return nil, fmt.Errorf("relay at %s: %s", addr, line)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// ServeRelay takes a connection another node's mesh relayed here (the
// caller has checked its certificate) and connects it to the local task
// it names. Only this node's running tasks can be reached this way.
func (m *Mesh) ServeRelay(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(headerTimeout))
	line, err := readLine(c)
	if err != nil {
		c.Close()
		return
	}
	var h relayHeader
	if err := json.Unmarshal([]byte(line), &h); err != nil || h.Task == "" {
		fmt.Fprintf(c, "error: malformed relay header\n")
		c.Close()
		return
	}
	if h.Port.Proto == "udp" {
		m.relayUDP(c, h)
		return
	}
	up, ok := answerRelay(c, h, m.dialLocal)
	if !ok {
		return
	}
	p := &pair{client: c, upstream: up}
	if !m.track(h.Task, p, false) {
		p.close()
		return
	}
	splice(c, up)
	m.untrack(h.Task, p)
}

// answerRelay connects a relayed connection's task with dial and tells
// the caller how it went: "ok", or the error (and the connection closes).
func answerRelay[T io.Closer](c net.Conn, h relayHeader, dial func(context.Context, relayHeader) (T, error)) (T, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	up, err := dial(ctx, h)
	cancel()
	if err != nil {
		writeRelayError(c, err)
		return up, false
	}
	if _, err := io.WriteString(c, "ok\n"); err != nil {
		c.Close()
		up.Close()
		return up, false
	}
	_ = c.SetDeadline(time.Time{})
	return up, true
}

// writeRelayError tells the caller why its task cannot be reached, and
// closes the connection.
func writeRelayError(c net.Conn, err error) {
	fmt.Fprintf(c, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	c.Close()
}

// readLine reads one line byte by byte: nothing after it may be consumed,
// since the payload follows on the same connection.
func readLine(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < maxHeader {
		if _, err := io.ReadFull(c, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
	return "", errors.New("relay header too long")
}

// splice copies both ways until both sides are done, passing half-closes
// on, then closes both.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}
