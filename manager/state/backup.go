package state

// Index is the log index of the last write the snapshot holds.
func (sn *Snapshot) Index() uint64 { return sn.index }
