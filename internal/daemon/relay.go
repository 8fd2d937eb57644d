package daemon

import (
	"slices"

	"context"
	"github.com/moby/moby/api/types/swarm"
	"sync"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
)

// relayer carries the heartbeats and status reports that nodes send this
// manager while it follows on to the leader. Nodes stay with whichever
// manager they talk to, as in SwarmKit, so the leader holds a third of the
// connections of a three-manager cluster and a failover moves only the
// dead manager's nodes. Everything that arrives while one relay is under
// way goes in the next, in one request: the leader sees a few requests a
// second from each follower rather than one per node.
//
// A node's request is answered only once the leader took its part, so a
// node never believes a beat or a report arrived that did not: when the
// relay fails, the node moves to another manager, as it would if this one
// were down.
type relayer struct {
	base    context.Context  // ends when the node stops
	manager func() relayHost // nil when this node is not a manager
	call    func(ctx context.Context, addr, path string, in, out any) error
	wait    time.Duration // bounds one relay; relayWait unless a test sets it

	// Beats and status reports go in separate relays, one after another
	// in each lane: the leader may hold reports until its replica has the
	// assignments they report on, and a beat must never wait for that (a
	// node late for its deadline is marked Down).
	beats, statusLane relayLane

	// bareLeader is the leader that said it takes beats without a
	// description (RelayResponse.BareBeats); to any other the relay
	// fills them in from this replica.
	bareMu     sync.Mutex
	bareLeader string
}

// relayLane is a queue of relays of one kind, sent one at a time.
type relayLane struct {
	mu     sync.Mutex
	queue  []*relayBatch // the last one fills
	flying bool
}

// relayHost is the manager a relayer works for.
type relayHost interface {
	IsLeader() bool
	Leader() (id, addr string)
	Relayed(ctx context.Context, req nodeapi.RelayRequest) (nodeapi.RelayResponse, error)
	NodeDescription(nodeID string) *swarm.NodeDescription
}

// managerHost is n's manager as a relayHost, nil when there is none.
func managerHost(n *clusterNode) func() relayHost {
	return func() relayHost {
		if m := n.manager(); m != nil {
			return m
		}
		return nil
	}
}

// relayBatchMax is how many nodes' requests one relay carries at most.
const relayBatchMax = 1000

type relayBatch struct {
	req  nodeapi.RelayRequest
	done chan struct{}
	resp nodeapi.RelayResponse
	err  error
}

// relayWait bounds one relay: long enough to wait out an election (about
// 1 s), so nodes do not all move managers during a failover.
const relayWait = failoverWait

// beat relays one node's heartbeat.
func (r *relayer) beat(ctx context.Context, nodeID string, req nodeapi.HeartbeatRequest) error {
	return r.send(ctx, &r.beats, nodeID, func(rr *nodeapi.RelayRequest) {
		rr.Beats = append(rr.Beats, nodeapi.RelayedBeat{Node: nodeID, Beat: req})
	}, func(resp *nodeapi.RelayResponse) map[string]nodeapi.Refusal { return resp.Refused })
}

// statuses relays one node's status reports.
func (r *relayer) statuses(ctx context.Context, nodeID string, req nodeapi.TaskStatusRequest) error {
	return r.send(ctx, &r.statusLane, nodeID, func(rr *nodeapi.RelayRequest) {
		rr.Statuses = append(rr.Statuses, nodeapi.RelayedStatus{Node: nodeID, Updates: req.Updates})
		rr.Index = max(rr.Index, req.Index)
	}, func(resp *nodeapi.RelayResponse) map[string]nodeapi.Refusal { return resp.StatusesRefused })
}

func (r *relayer) send(ctx context.Context, l *relayLane, nodeID string, add func(*nodeapi.RelayRequest), refused func(*nodeapi.RelayResponse) map[string]nodeapi.Refusal) error {
	l.mu.Lock()
	if k := len(l.queue); k == 0 || len(l.queue[k-1].req.Beats)+len(l.queue[k-1].req.Statuses) >= relayBatchMax {
		l.queue = append(l.queue, &relayBatch{done: make(chan struct{})})
	}
	b := l.queue[len(l.queue)-1]
	add(&b.req)
	if !l.flying {
		l.flying = true
		go r.fly(l)
	}
	l.mu.Unlock()
	select {
	case <-b.done:
	case <-ctx.Done():
		return errdefs.Unavailable("the relay to the leader did not end in time (%v): try another manager", ctx.Err())
	}
	if b.err != nil {
		return b.err
	}
	if ref, ok := refused(&b.resp)[nodeID]; ok {
		return ref.Err()
	}
	return nil
}

// fly sends a lane's batches one after another until none waits.
func (r *relayer) fly(l *relayLane) {
	for {
		l.mu.Lock()
		if len(l.queue) == 0 {
			l.flying = false
			l.mu.Unlock()
			return
		}
		b := l.queue[0]
		l.queue = l.queue[1:]
		l.mu.Unlock()
		b.resp, b.err = r.flush(b.req)
		close(b.done)
	}
}

// flush hands one batch to the leader, waiting for one during an
// election. A batch may be sent twice (a leader that took it but whose
// answer was lost): heartbeats and status reports are safe to repeat.
func (r *relayer) flush(req nodeapi.RelayRequest) (nodeapi.RelayResponse, error) {
	wait := r.wait
	if wait == 0 {
		wait = relayWait
	}
	ctx, cancel := context.WithTimeout(r.base, wait)
	defer cancel()
	err := errNoLeader
	for {
		m := r.manager()
		if m == nil {
			return nodeapi.RelayResponse{}, errdefs.ErrNotManager
		}
		if m.IsLeader() {
			// Became the leader since the node's request came in.
			return m.Relayed(ctx, req)
		}
		if id, addr := m.Leader(); id != "" {
			var resp nodeapi.RelayResponse
			err = r.call(ctx, addr, nodeapi.PathRelay, r.forLeader(m, addr, req), &resp)
			if err == nil {
				r.bareMu.Lock()
				if resp.BareBeats {
					r.bareLeader = addr
				} else if r.bareLeader == addr {
					r.bareLeader = "" // the leader's address now serves an earlier version
				}
				r.bareMu.Unlock()
			}
			if err == nil || !errdefs.Is(err, errdefs.KindUnavailable) {
				return resp, err
			}
		}
		select {
		case <-ctx.Done():
			return nodeapi.RelayResponse{}, errdefs.Unavailable("could not relay to the leader: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// forLeader returns req as the leader at addr takes it: beats that left
// their description out get this replica's, unless that leader said it
// takes them bare. req itself is not changed (a retry may go elsewhere).
func (r *relayer) forLeader(m relayHost, addr string, req nodeapi.RelayRequest) nodeapi.RelayRequest {
	r.bareMu.Lock()
	bare := r.bareLeader == addr
	r.bareMu.Unlock()
	if bare {
		return req
	}
	var filled []nodeapi.RelayedBeat
	for i, b := range req.Beats {
		if b.Beat.Description != nil {
			continue
		}
		if filled == nil {
			filled = slices.Clone(req.Beats)
		}
		filled[i].Beat.Description = m.NodeDescription(b.Node)
	}
	if filled != nil {
		req.Beats = filled
	}
	return req
}
