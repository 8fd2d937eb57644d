package manager

import (
	"crypto/rand"
	"math/big"
)

// Names for services created without --name, adjective_noun as Docker's.
var (
	nameAdjectives = []string{"agile", "bold", "brave", "calm", "clever", "eager", "fair", "gentle", "happy", "keen", "lively", "merry", "nimble", "proud", "quiet", "swift", "tidy", "vivid", "wise", "zesty"}
	nameNouns      = []string{"albatross", "barge", "buoy", "clipper", "dinghy", "ferry", "frigate", "galleon", "harbor", "ketch", "lighthouse", "mast", "pilot", "rudder", "schooner", "sloop", "tugboat", "voyager", "wharf", "yawl"}
)

func randomName() string {
	return pick(nameAdjectives) + "_" + pick(nameNouns) + suffix()
}

func pick(list []string) string {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
	return list[n.Int64()]
}

func suffix() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1000))
	return "_" + n.String()
}
