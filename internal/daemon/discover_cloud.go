package daemon

import "github.com/flotilla-org/flotilla/internal/discovery/helper"

// go-discover's cloud providers (provider=aws|gce|azure|... tag lookup)
// run in the flotilla-discover helper, not in this process.
func init() { helper.Register() }
