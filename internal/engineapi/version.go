package engineapi

// Version is the flotilla version reported by /version, /info and the
// Server header. It is set at build time with
// -ldflags "-X github.com/flotilla-org/flotilla/internal/engineapi.Version=...".
var Version = "0.1.0"

const (
	// APIVersion is the highest (and default) Engine API version served.
	APIVersion = "1.47"
	// MinAPIVersion is the lowest Engine API version served.
	MinAPIVersion = "1.24"

	// platformName is the product name in /version.
	platformName = "flotilla"
	// osType is the only OS flotilla runs workloads on.
	osType = "linux"
)
