package cloud

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/internal/discovery"
)

func TestGoDiscoverProvidersAreRegistered(t *testing.T) {
	names := discovery.Names()
	for _, want := range []string{"aws", "gce", "azure"} {
		if !slices.Contains(names, want) {
			t.Errorf("provider %q not registered; have %v", want, names)
		}
	}
	p, err := discovery.Parse("provider=aws tag_value=mgr port=4000 tag_key=role")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "go-discover provider=aws tag_key=role tag_value=mgr port=4000"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, err := discovery.Parse("provider=gce tag_value=x port=http"); err == nil || !strings.Contains(err.Error(), "not a port number") {
		t.Errorf("bad port: err = %v", err)
	}
	// No cloud here: a lookup whose time is up returns at once, naming
	// the provider, instead of hanging on an instance-metadata request.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Managers(ctx); err == nil || !strings.Contains(err.Error(), "provider=aws") {
		t.Errorf("cancelled lookup: err = %v", err)
	}
}
