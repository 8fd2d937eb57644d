package nodeapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// FetchCA downloads a manager's root CA certificate over a connection that
// trusts nothing yet. The caller must check it against the join token's
// digest before using it for anything.
func FetchCA(ctx context.Context, addr string, insecure *tls.Config) ([]byte, error) {
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 3 * time.Second}, Config: insecure}
			return d.DialContext(ctx, network, a)
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+PathCA, nil)
	if err != nil {
		return nil, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, DecodeResponse(resp, nil)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
