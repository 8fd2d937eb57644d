package daemon

// go-discover's cloud providers (provider=aws|gce|azure|... tag lookup).
import _ "github.com/flotilla-org/flotilla/internal/discovery/cloud"
