package gce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// Node is what the bootstrap asks of the local daemon.
type Node interface {
	// InSwarm reports whether the node is in a swarm already (restarted,
	// or initialised or joined by hand).
	InSwarm() bool
	// Init makes this node the first manager of a new swarm.
	Init(ctx context.Context) error
	// Join joins with token through the first of managers that answers.
	Join(ctx context.Context, token string, managers []string) error
}

// Bootstrap brings one instance into its cluster.
type Bootstrap struct {
	Settings  Settings
	MD        *Metadata
	Compute   *Compute // only managers write; nil on workers is fine
	Node      Node
	Advertise string // this node's cluster address, recorded in its claim
	Log       *slog.Logger
	// ClaimTimeout: a claim this old with nothing published, whose
	// claimant's cluster port does not answer, is taken as left by a
	// manager that died while initialising. Default 5 minutes.
	ClaimTimeout time.Duration
	// WaitSec bounds each wait_for_change, so the state is looked at again
	// now and then even without a change. Default 30.
	WaitSec int
}

// claim is the value of flotilla-<cluster>-init: which manager is
// initialising (or initialised) the swarm.
type claim struct {
	Instance string    `json:"instance"`
	Addr     string    `json:"addr"`
	At       time.Time `json:"at"`
}

// published is what the leader keeps in the project metadata.
type published struct {
	managerToken, workerToken string
	managers                  []string
}

func readPublished(attrs map[string]string, cluster string) (published, bool) {
	p := published{
		managerToken: attrs[Key(cluster, suffixManagerToken)],
		workerToken:  attrs[Key(cluster, suffixWorkerToken)],
		managers:     splitList(attrs[Key(cluster, suffixManagers)]),
	}
	return p, p.managerToken != "" && p.workerToken != "" && len(p.managers) > 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Run returns once the node is in a swarm, or when ctx ends.
func (b *Bootstrap) Run(ctx context.Context) error {
	if b.ClaimTimeout == 0 {
		b.ClaimTimeout = 5 * time.Minute
	}
	if b.WaitSec == 0 {
		b.WaitSec = 30
	}
	s := b.Settings
	b.Log.Info("GCE bootstrap: looking for the cluster in the project metadata", "cluster", s.Cluster, "role", s.Role,
		"instance", s.Instance, "managers_expected", s.ManagersExpected)
	backoff := time.Second
	for {
		if b.Node.InSwarm() {
			return nil
		}
		var next func(context.Context) error
		waiting := false
		err := b.MD.WatchProject(ctx, b.WaitSec, func(attrs map[string]string) (bool, error) {
			if b.Node.InSwarm() {
				return true, nil
			}
			if p, ok := readPublished(attrs, s.Cluster); ok {
				next = func(ctx context.Context) error { return b.join(ctx, p) }
				return true, nil
			}
			if s.Role == "manager" && b.mayClaim(attrs) {
				next = b.claimAndInit
				return true, nil
			}
			if !waiting {
				waiting = true
				b.Log.Info("GCE bootstrap: waiting for the leader to publish the join tokens and manager addresses",
					"attributes", Key(s.Cluster, "{manager-token,worker-token,managers}"))
			}
			return false, nil
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && next == nil {
			return nil // in a swarm
		}
		if err == nil {
			err = next(ctx)
			if err == nil {
				backoff = time.Second
				continue
			}
		}
		b.Log.Warn("GCE bootstrap: will retry", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// mayClaim says whether the attributes leave room for this manager to
// initialise: no claim, its own claim from an earlier life, or a stale one.
func (b *Bootstrap) mayClaim(attrs map[string]string) bool {
	raw, ok := attrs[Key(b.Settings.Cluster, suffixInit)]
	if !ok {
		return true
	}
	var c claim
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return true // unreadable: overwrite it
	}
	if c.Instance == b.Settings.Instance {
		return true
	}
	if time.Since(c.At) <= b.ClaimTimeout {
		return false
	}
	// Old, but a claimant whose cluster port answers is alive and only slow
	// to publish (e.g. the Compute API refuses its writes): a second swarm
	// would be worse than waiting.
	if conn, err := net.DialTimeout("tcp", c.Addr, 2*time.Second); err == nil {
		conn.Close()
		return false
	}
	return true
}

// errNotMine means another manager holds the claim, or tokens appeared.
var errNotMine = errors.New("another manager claimed the initialisation first")

// claimAndInit writes this manager's claim with the fingerprint it read;
// only one writer of the same fingerprint can succeed, so only one
// manager initialises even when all start at once.
func (b *Bootstrap) claimAndInit(ctx context.Context) error {
	s := b.Settings
	if b.Compute == nil {
		return fmt.Errorf("no Compute API client to claim the initialisation with")
	}
	key := Key(s.Cluster, suffixInit)
	err := b.Compute.Update(ctx, func(attrs map[string]string) (bool, error) {
		if _, ok := readPublished(attrs, s.Cluster); ok || !b.mayClaim(attrs) {
			return false, errNotMine
		}
		v, _ := json.Marshal(claim{Instance: s.Instance, Addr: b.Advertise, At: time.Now().UTC()})
		attrs[key] = string(v)
		return true, nil
	})
	if errors.Is(err, errNotMine) {
		b.Log.Info("GCE bootstrap: another manager initialises the swarm; waiting for it to publish the tokens")
		// The metadata server may lag behind the Compute API a moment:
		// do not spin on a stale view.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("claim the initialisation of cluster %s in the project metadata: %w", s.Cluster, err)
	}
	b.Log.Info("GCE bootstrap: this manager won the claim; initialising the swarm", "claim", key)
	if err := b.Node.Init(ctx); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyInSwarm) {
			return nil
		}
		// Hand the claim back so another manager can initialise.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = b.Compute.Update(rctx, func(attrs map[string]string) (bool, error) {
			var c claim
			if json.Unmarshal([]byte(attrs[key]), &c) == nil && c.Instance == s.Instance {
				delete(attrs, key)
				return true, nil
			}
			return false, nil
		})
		return fmt.Errorf("initialise the swarm: %w", err)
	}
	return nil
}

// join uses the published tokens; a manager-role instance joins as a
// worker once the cluster has the managers it expects.
func (b *Bootstrap) join(ctx context.Context, p published) error {
	s := b.Settings
	role, tok := s.Role, p.workerToken
	if s.Role == "manager" {
		if s.ManagersExpected > 0 && len(p.managers) >= s.ManagersExpected {
			role = "worker"
			b.Log.Info("GCE bootstrap: the cluster has the managers it expects; joining as a worker",
				"managers", len(p.managers), "expected", s.ManagersExpected)
		} else {
			tok = p.managerToken
		}
	}
	b.Log.Info("GCE bootstrap: joining", "role", role, "managers", p.managers)
	err := b.Node.Join(ctx, tok, p.managers)
	if err == nil || errors.Is(err, errdefs.ErrAlreadyInSwarm) {
		return nil
	}
	return fmt.Errorf("join cluster %s as %s through %v (from project attribute %s): %w", s.Cluster, role, p.managers, Key(s.Cluster, suffixManagers), err)
}
