package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager"
)

// How long a forwarded write waits for a leader: after the known leader
// could not be dialled (it just died; an election takes about 1 s), and
// when no leader is known at all (an election may be under way, or the
// quorum is lost: then the write must fail fast).
const (
	failoverWait = 3 * time.Second
	noLeaderWait = 1500 * time.Millisecond
)

// hopHeaders are per-connection headers that must not be forwarded.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// proxyToLeader forwards r to the leader's cluster port; prefix is put in
// front of the path (the Engine API lives under /api there). When the
// leader cannot be dialled — it just died — the request waits for the
// election and goes to the new leader, so a write during a failover
// succeeds instead of failing; only dial failures are retried, so a write
// is never sent twice.
//
// limit is the body size the leader accepts on that path: a larger body is
// refused here, as the leader would refuse it (forwarded, the leader reset
// the connection and the write was reported as maybe applied).
func (n *clusterNode) proxyToLeader(w http.ResponseWriter, r *http.Request, m *manager.Manager, peerID, prefix string, limit int64) {
	if r.Header.Get(nodeapi.HeaderForwarded) != "" {
		nodeapi.WriteError(w, errdefs.Unavailable("leadership changed while the request was being forwarded; retry"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		nodeapi.WriteError(w, errdefs.Invalid("read request: %v", err))
		return
	}
	if int64(len(body)) > limit {
		nodeapi.WriteError(w, errdefs.Invalid("request body too large: the limit is %d bytes", limit))
		return
	}
	read := r.Method == http.MethodGet
	start := time.Now()
	dead := ""
	var lastErr error
	for r.Context().Err() == nil {
		id, addr := m.Leader()
		if id == "" || addr == dead {
			wait := noLeaderWait
			if dead != "" {
				wait = failoverWait
			}
			if read || time.Since(start) > wait {
				break // reads never wait: the local replica answers
			}
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		resp, err := n.send(r, m, addr, prefix, peerID, body)
		if err == nil {
			relay(w, resp)
			return
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			lastErr = err // the request may have reached the leader: do not resend
			break
		}
		dead = addr
	}
	switch {
	case r.Method == http.MethodGet && prefix == nodeapi.PathAPI:
		// A read answers from this replica rather than fail.
		local := r.Clone(r.Context())
		local.Body = io.NopCloser(bytes.NewReader(body))
		n.serveStale(w, local)
	case lastErr == nil:
		// No leader answered in time: an election that does not end, or
		// the quorum is lost.
		nodeapi.WriteError(w, errNoLeader)
	default:
		nodeapi.WriteError(w, errdefs.Unavailable("lost the connection to the leader during the request (%v); it may or may not have been applied: check, then retry", lastErr))
	}
}

// serveStale answers a read from this manager's replica, with a header
// saying that it may miss recent writes.
func (n *clusterNode) serveStale(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(nodeapi.HeaderStaleRead, "answered by this manager's replica without a confirmed leader; it may miss recent writes")
	local := r.Clone(r.Context())
	local.Header.Set(nodeapi.HeaderStaleRead, "1") // served here, never forwarded again
	n.d.apiHandler.ServeHTTP(w, local)
}

// send forwards the request to the leader at addr. Until the answer's
// headers arrive it watches who leads: a leader that was paused or cut off
// would hold the request forever, while the others elect a new one (or,
// without quorum, none), so the request is abandoned as soon as this
// manager no longer sees addr as the leader.
func (n *clusterNode) send(r *http.Request, m *manager.Manager, addr, prefix, peerID string, body []byte) (*http.Response, error) {
	u := *r.URL
	u.Scheme, u.Host, u.Path, u.RawPath = "https", addr, prefix+r.URL.Path, ""
	ctx, cancel := context.WithCancelCause(r.Context())
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	answered := make(chan struct{})
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-answered:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, now := m.Leader(); now != addr {
					cancel(errLeaderChanged)
					return
				}
			}
		}
	}()
	resp, err := n.do(out, peerID, r.Header)
	close(answered)
	if err != nil {
		cancel(nil)
		if context.Cause(ctx) == errLeaderChanged {
			err = fmt.Errorf("%w: %w", errLeaderChanged, err)
		}
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

var errLeaderChanged = errors.New("the leader stopped answering and lost its leadership")

// cancelOnClose releases a forwarded request's context with its body.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func (n *clusterNode) do(out *http.Request, peerID string, header http.Header) (*http.Response, error) {
	out.Header = header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	out.Header.Set(nodeapi.HeaderForwarded, "1")
	if peerID != "" {
		out.Header.Set(nodeapi.HeaderPeer, peerID)
	}
	return n.cli.Do(out)
}

// relayBufs are relay's buffers: every request a node sends a follower
// is relayed (heartbeats, status reports), a buffer each.
var relayBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// relay copies the leader's answer, flushing as it goes so streams (logs
// with --follow, long-polls) pass through as they come.
func relay(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	buf := *bp
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
