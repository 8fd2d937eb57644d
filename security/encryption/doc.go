// Package encryption seals data at rest for managers: the Raft log entries
// and snapshots (with a data encryption key, the DEK) and the node's key
// file (with the key encryption key, the KEK, which is the swarm's unlock
// key when autolock is on).
//
// Everything is AES-256-GCM. Sealed data starts with a magic prefix so a
// reader tells it apart from data written before encryption existed, and is
// bound to what it is (additional data such as a log index), so a sealed
// blob moved to another place fails to open instead of being read wrongly.
package encryption
