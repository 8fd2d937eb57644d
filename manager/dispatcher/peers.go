package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/manager/state"
)

// Peers answers a node's long-poll for the nodes' addresses once they
// differ from what it has (known fingerprint). The list depends on nodes
// only, so the long-polls wake on Reshaped, which every node change
// fires, not on each of a wave's status reports.
func (d *Dispatcher) Peers(ctx context.Context, known string) nodeapi.PeersResponse {
	return waitChange(ctx, known, d.store.Reshaped, func() (nodeapi.PeersResponse, string) {
		r := d.peers()
		return r, r.Fingerprint
	})
}

// peers is PeersIn of the current state, computed once per state change
// however many nodes ask.
func (d *Dispatcher) peers() nodeapi.PeersResponse {
	v := d.store.View()
	d.routesMu.Lock()
	defer d.routesMu.Unlock()
	if d.peersAt != v.Index() || d.peersCache.Fingerprint == "" {
		d.peersCache, d.peersAt = PeersIn(v), v.Index()
	}
	return d.peersCache
}

// PeersIn are the hosts of the Ready nodes' cluster addresses, once
// each, sorted.
func PeersIn(v *state.View) nodeapi.PeersResponse {
	seen := map[string]bool{}
	var resp nodeapi.PeersResponse
	for _, n := range v.Nodes() {
		host, _, err := net.SplitHostPort(n.Addr)
		if err != nil || n.Status.State != swarm.NodeStateReady || seen[host] {
			continue
		}
		seen[host] = true
		resp.Peers = append(resp.Peers, host)
	}
	sort.Strings(resp.Peers)
	sum := sha256.Sum256([]byte(strings.Join(resp.Peers, ",")))
	resp.Fingerprint = hex.EncodeToString(sum[:12])
	resp.Index = v.Index()
	return resp
}
