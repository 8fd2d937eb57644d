package nodeapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/moby/moby/api/types/swarm"
)

// DescriptionHash fingerprints the part of a node's description that the
// node reports and the swarm records: hostname, platform, resources and
// engine (version, labels, plugins). Node and manager compute it alike;
// encoding/json sorts map keys, so equal descriptions hash equal. A
// manager of another version that hashes differently only makes the node
// send its description with every beat, as before.
func DescriptionHash(d swarm.NodeDescription) string {
	b, err := json.Marshal(struct {
		Hostname  string
		Platform  swarm.Platform
		Resources swarm.Resources
		Engine    swarm.EngineDescription
	}{d.Hostname, d.Platform, d.Resources, d.Engine})
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}
