package nodeapi

import (
	"net/http"
	"time"

	"golang.org/x/net/http2"

	"github.com/flotilla-org/flotilla/internal/clusterport"
)

// useHTTP2 makes tr speak HTTP/2 on connections whose peer chose
// clusterport.ProtoRPC2 in the TLS handshake, so all requests to one node share one connection (HTTP/1
// needs one per request in flight), and HTTP/1 with peers that chose the
// older protocol. x/net's HTTP/2 transport does the pooling: a
// connection that closes or runs out of streams is replaced by a new
// dial, as for "h2".
func useHTTP2(tr *http.Transport) {
	t2, err := http2.ConfigureTransports(tr)
	if err != nil {
		return // HTTP/1 only: already configured, which this package never does
	}
	// One connection carries every request to a peer: a silent peer
	// (paused, cut off) must be noticed without waiting for each
	// request's own timeout, and the connection replaced. A peer that is
	// only busy must not be taken for dead, though: dropping the
	// connection fails every request on it at once (a follower's relays
	// for a third of the nodes), and their retries add to the load. A
	// node does not wait for this to leave a silent manager: its beat
	// gives up first.
	t2.ReadIdleTimeout = 5 * time.Second
	t2.PingTimeout = 10 * time.Second
	tr.TLSNextProto[clusterport.ProtoRPC2] = tr.TLSNextProto["h2"]
}
