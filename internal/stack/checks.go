package stack

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/flotilla-org/flotilla/manager/scheduler"
)

// The values a compose file may give where the CLI's flags check the
// same (with these packages' own words for where).
var (
	taskDrivers   = []string{"docker", "process"}
	endpointModes = []string{string(swarm.ResolutionModeVIP), string(swarm.ResolutionModeDNSRR)}
)

// driverLabel is the container label that selects the task driver.
const driverLabel = scheduler.DriverLabel

// QuoteList renders choices as `"a", "b" or "c"` (the CLI's messages use
// it too).
func QuoteList(choices []string) string {
	q := make([]string, len(choices))
	for i, c := range choices {
		q[i] = fmt.Sprintf("%q", c)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// nanoCPUs parses deploy.resources' cpus, such as "0.5", into nano CPUs.
func nanoCPUs(v string) (int64, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(v))
	if !ok {
		return 0, fmt.Errorf("invalid cpus %q: must be a number of CPUs, such as 0.5 or 2", v)
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("invalid cpus %q: must not be negative", v)
	}
	nano := new(big.Rat).Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, fmt.Errorf("invalid cpus %q: too precise (at most 9 decimal places)", v)
	}
	if !nano.Num().IsInt64() {
		return 0, fmt.Errorf("invalid cpus %q: too large", v)
	}
	return nano.Num().Int64(), nil
}
