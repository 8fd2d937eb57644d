package manager

import (
	"context"
	"net/netip"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/state"
)

// newIngress returns the ingress network as Docker makes it at swarm
// init: overlay, 10.0.0.0/24 (or the first free subnet of the pool if
// another network holds that one).
func newIngress(v *state.View) (*state.Network, error) {
	spec := swarm.NetworkSpec{
		Annotations:         swarm.Annotations{Name: IngressName, Labels: map[string]string{}},
		DriverConfiguration: &swarm.Driver{Name: NetworkDriver},
		Ingress:             true,
	}
	if _, taken := overlapping(ingressSubnet, usedSubnets(v.Networks())); !taken {
		spec.IPAMOptions = &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"},
			Configs: []swarm.IPAMConfig{{Subnet: ingressSubnet, Gateway: netip.MustParseAddr("10.0.0.1")}}}
	}
	return newNetwork(v, spec)
}

// makeIngress gives a cluster from before networks its ingress network:
// the first leader that finds the cluster without one (and never made
// one) makes it. It returns once done, or when leadership ends.
func (m *Manager) makeIngress(ctx context.Context) {
	wait := 100 * time.Millisecond
	for {
		changed := m.store.Changed()
		done, err := m.tryMakeIngress(ctx)
		if done {
			return
		}
		if err != nil {
			m.log.Warn("cannot make the ingress network; retrying", "err", err)
		} else {
			wait = 100 * time.Millisecond // waiting for swarm init, not failing
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(wait):
		}
		if err != nil {
			wait = min(2*wait, 5*time.Second)
		}
	}
}

// tryMakeIngress reports whether there is nothing (more) to do.
func (m *Manager) tryMakeIngress(ctx context.Context) (bool, error) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	ops, done, err := ingressOps(m.store.View())
	if done || err != nil || len(ops) == 0 {
		return done, err // done, failed, or waiting for swarm init
	}
	if err := m.propose(ctx, ops...); err != nil {
		return false, err
	}
	if len(ops) > 1 {
		m.log.Info("made the ingress network, which this cluster lacked")
	}
	return false, nil
}

// ingressOps are the writes that give the cluster its ingress network
// and record that it was made; done when there is nothing to write.
func ingressOps(v *state.View) (ops []state.Op, done bool, err error) {
	c := v.Cluster()
	switch {
	case c == nil:
		return nil, false, nil // swarm init has not written the cluster yet
	case c.IngressMade:
		return nil, true, nil
	}
	cu := c.Copy()
	cu.IngressMade = true
	ops = []state.Op{state.NewOp(state.TableCluster, state.ActionUpdate, cu, c.Version.Index)}
	// A network already named ingress (made through the API meanwhile)
	// is left alone: the user chose it.
	if ingressNetwork(v) == nil && networkByName(v, IngressName) == nil {
		n, err := newIngress(v)
		if err != nil {
			return nil, false, err
		}
		ops = append(ops, state.NewOp(state.TableNetworks, state.ActionCreate, n, 0))
	}
	return ops, false, nil
}
