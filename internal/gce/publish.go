package gce

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// State is what the leader publishes.
type State struct {
	ManagerToken, WorkerToken string
	Leader                    string   // the leader's cluster address
	Managers                  []string // live managers' cluster addresses, leader first
}

func (s State) equal(o State) bool {
	return s.ManagerToken == o.ManagerToken && s.WorkerToken == o.WorkerToken && s.Leader == o.Leader &&
		slices.Equal(s.Managers, o.Managers)
}

func (s State) attrs(cluster string) map[string]string {
	return map[string]string{
		Key(cluster, suffixManagerToken): s.ManagerToken,
		Key(cluster, suffixWorkerToken):  s.WorkerToken,
		Key(cluster, suffixLeader):       s.Leader,
		Key(cluster, suffixManagers):     strings.Join(s.Managers, ","),
	}
}

// Publisher keeps the leader's view in the project metadata. It runs only
// while its manager leads.
type Publisher struct {
	Compute *Compute
	Cluster string
	Log     *slog.Logger
	// Recheck: how often the metadata is read back even without a local
	// change, to repair a late write of a former leader. Default 15 s.
	Recheck time.Duration
}

// Run publishes state() now and whenever changed() fires, until ctx ends.
// state returns false while it has nothing to say yet.
func (p *Publisher) Run(ctx context.Context, state func() (State, bool), changed func() <-chan struct{}) {
	if p.Recheck == 0 {
		p.Recheck = 15 * time.Second
	}
	var last State
	lastOK := false
	recheck := time.NewTicker(p.Recheck)
	defer recheck.Stop()
	force := true
	for {
		ch := changed()
		if cur, ok := state(); ok && (force || !lastOK || !cur.equal(last)) {
			if err := p.publish(ctx, cur); err != nil {
				if ctx.Err() != nil {
					return
				}
				p.Log.Warn("GCE: could not publish the cluster's tokens and managers in the project metadata; retrying", "err", err)
				lastOK = false
			} else {
				last, lastOK = cur, true
			}
		}
		force = false
		retry := time.After(time.Second)
		if lastOK {
			retry = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-retry:
		case <-recheck.C:
			force = true
		}
		// Heartbeats change the store often; look at most a few times a second.
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *Publisher) publish(ctx context.Context, s State) error {
	want := s.attrs(p.Cluster)
	wrote := false
	err := p.Compute.Update(ctx, func(attrs map[string]string) (bool, error) {
		changed := false
		for k, v := range want {
			if attrs[k] != v {
				attrs[k] = v
				changed = true
			}
		}
		wrote = changed
		return changed, nil
	})
	if err == nil && wrote {
		p.Log.Info("GCE: published the cluster's tokens and managers in the project metadata",
			"cluster", p.Cluster, "leader", s.Leader, "managers", s.Managers)
	}
	return err
}
