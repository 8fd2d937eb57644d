package daemon

import (
	"errors"

	"github.com/flotilla-org/flotilla/internal/discovery"
	"github.com/flotilla-org/flotilla/internal/gce"
)

// "provider=gce-metadata cluster=NAME" reads the managers the leader of
// cluster NAME published in the GCE project metadata (--bootstrap gce),
// so a node can join such a swarm with --join and a token, or find it
// again after a restart.
func init() {
	discovery.Register("gce-metadata", func(args map[string]string) (discovery.Provider, error) {
		if args["cluster"] == "" {
			return nil, errors.New("provider=gce-metadata needs cluster=NAME, the cluster name of the flotilla-NAME-* project attributes")
		}
		return &gce.Provider{MD: gce.NewMetadata(), Cluster: args["cluster"]}, nil
	})
}
