package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/internal/clusterport"
	"github.com/flotilla-org/flotilla/internal/discovery"
	"github.com/flotilla-org/flotilla/internal/errdefs"
	"github.com/flotilla-org/flotilla/internal/nodeapi"
	"github.com/flotilla-org/flotilla/security/ca"
	"github.com/flotilla-org/flotilla/security/jointoken"
)

// JoinConfig makes a daemon that is in no swarm join (or, with
// BootstrapExpect, form) one by itself, finding the managers through a
// discovery spec.
type JoinConfig struct {
	Spec            string // --join: discovery spec, see discovery.Parse
	Token           string // --join-token
	BootstrapToken  string // --bootstrap-token: shared secret the join tokens are derived from
	BootstrapExpect int    // --bootstrap-expect: managers that form the swarm together
	Role            swarm.NodeRole
	ListenAddr      string // --listen-addr: cluster port
	AdvertiseAddr   string // --advertise-addr
}

// minBootstrapToken keeps derived tokens from being guessable.
const minBootstrapToken = 16

// Check reports flag combinations that cannot work, before anything starts.
func (c JoinConfig) Check() error {
	if c.Spec == "" {
		if c.Token != "" || c.BootstrapToken != "" || c.BootstrapExpect != 0 {
			return errors.New("--join-token, --bootstrap-token and --bootstrap-expect need --join SPEC to find the managers")
		}
		return nil
	}
	if _, err := discovery.Parse(c.Spec); err != nil {
		return fmt.Errorf("--join: %w", err)
	}
	if c.Token == "" && c.BootstrapToken == "" {
		return errors.New("--join needs --join-token TOKEN (from 'swarm join-token') or --bootstrap-token SECRET")
	}
	if c.Token != "" {
		if c.BootstrapToken != "" || c.BootstrapExpect != 0 {
			return errors.New("--join-token joins an existing swarm; --bootstrap-token/--bootstrap-expect form a new one: give one or the other")
		}
		if _, err := jointoken.Parse(c.Token); err != nil {
			return fmt.Errorf("--join-token: %w", err)
		}
	}
	if c.BootstrapToken != "" && len(c.BootstrapToken) < minBootstrapToken {
		return fmt.Errorf("--bootstrap-token must have at least %d characters (e.g. 'openssl rand -hex 32'): the join tokens are derived from it", minBootstrapToken)
	}
	if c.BootstrapExpect < 0 {
		return errors.New("--bootstrap-expect must be a positive number of managers")
	}
	if c.BootstrapExpect > 0 && c.Role == swarm.NodeRoleWorker {
		return errors.New("--bootstrap-expect counts managers: a node with --role worker cannot take part")
	}
	if c.Role != "" && c.Role != swarm.NodeRoleWorker && c.Role != swarm.NodeRoleManager {
		return fmt.Errorf("--role %q: use manager or worker", c.Role)
	}
	return nil
}

func (c JoinConfig) role() swarm.NodeRole {
	if c.Role != "" {
		return c.Role
	}
	if c.BootstrapExpect > 0 {
		return swarm.NodeRoleManager
	}
	return swarm.NodeRoleWorker
}

func newJoinToken(caDER, bootstrapSecret []byte, role string) (string, error) {
	if bootstrapSecret != nil {
		return jointoken.Derive(caDER, bootstrapSecret, role), nil
	}
	return jointoken.Generate(caDER)
}

// autoJoin runs until the node is in a swarm: it asks the provider for
// the managers and joins through the first that admits it, backing off
// while none answers (workers may start before any manager).
func (d *Daemon) autoJoin(ctx context.Context) {
	jc := d.cfg.Join
	p, err := discovery.Parse(jc.Spec)
	if err != nil {
		d.log.Error("--join", "err", err)
		return
	}
	var boot *bootstrapper
	if jc.BootstrapExpect > 0 {
		if boot, err = d.newBootstrapper(p); err != nil {
			d.log.Error("--bootstrap-expect: cannot start", "err", err)
			return
		}
		defer boot.close()
	}
	wait := 250 * time.Millisecond
	for d.current() == nil {
		var err error
		if boot != nil {
			err = boot.step(ctx)
		} else {
			err = d.joinDiscovered(ctx, p)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		if k := errdefs.KindOf(err); k == errdefs.KindUnauthorized || k == errdefs.KindForbidden {
			d.log.Error("the managers refused to admit this node; fix --join-token or --bootstrap-token and restart", "provider", p, "err", err)
			return
		}
		d.log.Info("not in a swarm yet; will try again", "provider", p, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// joinDiscovered makes one join attempt through every manager found now.
func (d *Daemon) joinDiscovered(ctx context.Context, p discovery.Provider) error {
	jc := d.cfg.Join
	addrs, err := discover(ctx, p)
	if err != nil {
		return err
	}
	token := jc.Token
	if token == "" {
		if token, err = derivedToken(ctx, addrs, []byte(jc.BootstrapToken), jc.role()); err != nil {
			return err
		}
	}
	err = d.swarmJoin(ctx, swarm.JoinRequest{RemoteAddrs: addrs, JoinToken: token, ListenAddr: jc.ListenAddr, AdvertiseAddr: jc.AdvertiseAddr}, jc.Spec)
	if errors.Is(err, errdefs.ErrAlreadyInSwarm) {
		return nil // joined through the API meanwhile
	}
	return err
}

func discover(ctx context.Context, p discovery.Provider) ([]string, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := p.Managers(dctx)
	if err != nil {
		return nil, errdefs.Unavailable("discover managers: %v", err)
	}
	if len(addrs) == 0 {
		return nil, errdefs.Unavailable("%s lists no manager yet", p)
	}
	return addrs, nil
}

// derivedToken fetches the swarm's CA from the first manager that answers
// and derives the role's join token from it and the bootstrap secret.
func derivedToken(ctx context.Context, addrs []string, secret []byte, role swarm.NodeRole) (string, error) {
	var errs []error
	for _, a := range addrs {
		caPEM, err := nodeapi.FetchCA(ctx, a, ca.FetchInsecureConfig(clusterport.ProtoRPC))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		root, err := ca.ParseRootCA(caPEM, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s sent an unusable CA: %w", a, err))
			continue
		}
		return jointoken.Derive(root.Cert.Raw, secret, string(role)), nil
	}
	return "", errdefs.Unavailable("no swarm manager answers yet: %v", errors.Join(errs...))
}

// refreshManagers is what the session tries once every manager it knew
// failed: the known ones again, then whatever the discovery spec the node
// joined through (or was started with) lists now.
func (n *clusterNode) refreshManagers() []string {
	out := n.managerAddrs()
	st := n.state()
	spec := n.d.cfg.Join.Spec
	if spec == "" {
		spec = st.Discovery
	}
	if spec == "" {
		return out
	}
	p, err := discovery.Parse(spec)
	if err != nil {
		n.log.Warn("remembered discovery spec is unusable", "spec", spec, "err", err)
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	found, err := p.Managers(ctx)
	if err != nil {
		n.log.Warn("no known manager answers, and discovery failed", "provider", p, "err", err)
		return out
	}
	var added []string
	for _, a := range found {
		if a != st.AdvertiseAddr && !slices.Contains(out, a) {
			added = append(added, a)
		}
	}
	if len(added) > 0 {
		n.log.Info("no known manager answers; trying the ones discovery lists now", "provider", p, "added", added)
	}
	return append(out, added...)
}
