package gce

import (
	"context"
	"fmt"
)

// Provider answers "where are the managers?" from the addresses the leader
// published in the project metadata (the discovery.Provider interface).
type Provider struct {
	MD      *Metadata
	Cluster string
}

// Managers returns the published cluster addresses of the live managers.
func (p *Provider) Managers(ctx context.Context) ([]string, error) {
	v, err := p.MD.c.ProjectAttributeValueWithContext(ctx, Key(p.Cluster, suffixManagers))
	if isNotDefined(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read project attribute %s from the GCE metadata server at %s: %w", Key(p.Cluster, suffixManagers), Host(), err)
	}
	return splitList(v), nil
}

func (p *Provider) String() string { return "gce cluster " + p.Cluster }
