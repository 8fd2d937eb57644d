package daemon

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/internal/discovery"
	"github.com/flotilla-org/flotilla/internal/gce"
	"github.com/flotilla-org/flotilla/internal/gce/gcetest"
)

// The GCE provider is reachable through a discovery spec and reads the
// managers published in the (emulated) project metadata.
func TestGCEMetadataDiscoverySpec(t *testing.T) {
	if _, err := discovery.Parse("provider=gce-metadata"); err == nil || !strings.Contains(err.Error(), "cluster=NAME") {
		t.Errorf("no cluster: err = %v, want one asking for cluster=NAME", err)
	}
	s, err := gcetest.New("proj")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	in, err := s.AddInstance("vm-1", "127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GCE_METADATA_HOST", in.Host)
	p, err := discovery.Parse("provider=gce-metadata cluster=prod")
	if err != nil {
		t.Fatal(err)
	}
	s.SetProjectAttr(gce.Key("prod", "managers"), "127.0.0.1:4001,127.0.0.1:4002")
	got, err := p.Managers(context.Background())
	if err != nil || !slices.Equal(got, []string{"127.0.0.1:4001", "127.0.0.1:4002"}) {
		t.Fatalf("Managers() = %v, %v", got, err)
	}
}
