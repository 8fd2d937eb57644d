package state

// Cluster returns the one cluster object, or nil before init.
func (s *View) Cluster() *Cluster {
	if objs := s.List(TableCluster); len(objs) > 0 {
		return objs[0].(*Cluster)
	}
	return nil
}

// Node returns a node by full ID, or nil.
func (s *View) Node(id string) *Node {
	if o := s.Get(TableNodes, id); o != nil {
		return o.(*Node)
	}
	return nil
}

// Nodes returns every node.
func (s *View) Nodes() []*Node {
	objs := s.List(TableNodes)
	out := make([]*Node, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*Node))
	}
	return out
}
