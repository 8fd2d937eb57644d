package nodeapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Client calls other nodes' cluster ports. Its TLS config comes from a
// function because the node's certificate changes (join, promote, demote);
// connections made with an old certificate are dropped when it does.
type Client struct {
	tlsConfig func() *tls.Config
	gen       func() uint64

	mu      sync.Mutex
	curGen  uint64
	tr      *http.Transport
	timeout time.Duration
}

// NewClient returns a client. gen must change whenever tlsConfig's
// certificate does.
func NewClient(tlsConfig func() *tls.Config, gen func() uint64) *Client {
	return &Client{tlsConfig: tlsConfig, gen: gen, timeout: 10 * time.Second}
}

func (c *Client) transport() *http.Transport {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gen()
	if c.tr == nil || g != c.curGen {
		if c.tr != nil {
			c.tr.CloseIdleConnections()
		}
		cfg := c.tlsConfig()
		c.tr = &http.Transport{
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialTLS(ctx, network, addr, cfg)
			},
			// Followers forward many requests to the leader at once; keep
			// their connections rather than pay a TLS handshake each time.
			MaxIdleConnsPerHost: 1024,
			// A node keeps a connection busy with the manager it talks to
			// (long-polls, beats) and a follower with the leader (relays);
			// one left idle is to a manager the node moved away from,
			// which would otherwise hold its state for minutes (thousands
			// of them after a storm of moves).
			IdleConnTimeout: 10 * time.Second,
		}
		useHTTP2(c.tr)
		c.curGen = g
	}
	return c.tr
}

// Bounds of a dial: a peer that does not answer at all is given up
// soon; a TLS handshake that started may take longer when a manager
// takes thousands of nodes at once. The transport finishes a dial even
// when the request that started it gave up, and keeps the connection for
// the next request: cutting the handshake short would waste the work done
// and make the storm that slowed it last longer.
var (
	connectTimeout   = 3 * time.Second
	handshakeTimeout = 10 * time.Second
)

func dialTLS(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
	raw, err := (&net.Dialer{Timeout: connectTimeout}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	c := cfg
	if c.ServerName == "" {
		c = cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			c.ServerName = host
		}
	}
	tc := tls.Client(raw, c)
	if err := tc.HandshakeContext(hctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// Close drops idle connections.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tr != nil {
		c.tr.CloseIdleConnections()
	}
}

// Do sends an HTTP request to a node's cluster port.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	return c.transport().RoundTrip(req)
}

// Call POSTs in as JSON to path on addr and decodes the answer into out.
func (c *Client) Call(ctx context.Context, addr, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+addr+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return errdefs.Unavailable("cannot reach manager at %s: %w", addr, err)
	}
	defer resp.Body.Close()
	return DecodeResponse(resp, out)
}

// DecodeResponse turns an error status into a classified error and a
// success into out.
func DecodeResponse(resp *http.Response, out any) error {
	data, err := ReadBody(resp.Body, resp.ContentLength, maxAnswer)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(data))
		}
		return Refusal{Status: resp.StatusCode, Error: e}.Err()
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return Unmarshal(data, out)
}

// Err is the classified error the refusal stands for.
func (r Refusal) Err() error {
	if r.Code == CodeNodeRemoved {
		return errdefs.WithKind(errdefs.KindOf(errdefs.FromHTTPStatus(r.Status, "")), removedError{r.Message})
	}
	return errdefs.FromHTTPStatus(r.Status, r.Message)
}

// RefusalOf is err as it would be answered.
func RefusalOf(err error) Refusal {
	return Refusal{Status: errdefs.HTTPStatus(err), Error: Error{Message: err.Error(), Code: codeOf(err)}}
}

// WriteError writes err as the JSON error body with its status.
func WriteError(w http.ResponseWriter, err error) {
	r := RefusalOf(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.Status)
	_ = json.NewEncoder(w).Encode(r.Error)
}

// WriteJSON writes v with status 200, and its length, so the answer
// goes out in as few frames as it fits and its reader sizes its buffer
// once.
func WriteJSON(w http.ResponseWriter, v any) {
	b, err := Marshal(v)
	if err != nil {
		WriteError(w, err)
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
