package state

import "github.com/moby/moby/api/types/swarm"

// Network is a swarm-scope network: Spec is what the user asked for,
// IPAMOptions what the managers allocated (the subnet and gateway in use),
// as in swarmkit.
type Network struct {
	swarm.Network
}

// TableNetworks holds the cluster's networks.
const TableNetworks = "networks"

func init() {
	tables[TableNetworks] = tableDef{newObj: func() Object { return &Network{} }}
}

// GetID returns the object's ID.
func (n *Network) GetID() string { return n.ID }

// GetMeta returns the object's version and timestamps.
func (n *Network) GetMeta() *swarm.Meta { return &n.Meta }

// Copy returns a deep copy.
func (n *Network) Copy() *Network {
	var out Network
	mustCopy(n, &out)
	return &out
}

// Network returns a network by full ID, or nil.
func (v *View) Network(id string) *Network {
	if o := v.Get(TableNetworks, id); o != nil {
		return o.(*Network)
	}
	return nil
}

// Networks returns every network, in ID order.
func (v *View) Networks() []*Network {
	objs := v.List(TableNetworks)
	out := make([]*Network, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*Network))
	}
	return out
}

// Network returns a network by full ID, or nil.
func (s *Store) Network(id string) *Network { return s.View().Network(id) }

// Networks returns every network.
func (s *Store) Networks() []*Network { return s.View().Networks() }
