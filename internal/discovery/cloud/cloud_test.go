package cloud

import (
	"context"
	"log"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/flotilla-org/flotilla/internal/discovery"
	"github.com/flotilla-org/flotilla/internal/discovery/helper"
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

// Every go-discover provider is built in but vSphere, whose SDK is too
// large to carry in every process (`-tags vsphere` adds it).
func TestProvidersBuiltIn(t *testing.T) {
	names := discovery.Names()
	for _, want := range []string{"aliyun", "aws", "azure", "digitalocean", "gce", "linode", "mdns", "os", "packet", "scaleway", "softlayer", "tencentcloud", "triton"} {
		if !slices.Contains(names, want) {
			t.Errorf("provider %q not registered; have %v", want, names)
		}
	}
	if _, vsphere := providers["vsphere"]; vsphere != slices.Contains(names, "vsphere") {
		t.Errorf("vsphere registered %v, built in %v", slices.Contains(names, "vsphere"), vsphere)
	}
}

type recordingLookup struct{ args map[string]string }

func (r *recordingLookup) Addrs(args map[string]string, _ *log.Logger) ([]string, error) {
	r.args = args
	return []string{"10.0.0.7", "10.0.0.8"}, nil
}

// The provider gets go-discover's arguments as its root package would
// hand them: URL-decoded, with its name, without flotilla's port key; the
// addresses come back with the cluster port.
func TestLookupArguments(t *testing.T) {
	r := &recordingLookup{}
	p, err := newProvider(r, map[string]string{"provider": "gce", "tag_value": "swarm%20managers", "port": "4000"})
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := p.Managers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.0.7:4000", "10.0.0.8:4000"}; !slices.Equal(addrs, want) {
		t.Errorf("Managers = %v, want %v", addrs, want)
	}
	if want := map[string]string{"provider": "gce", "tag_value": "swarm managers"}; !maps.Equal(r.args, want) {
		t.Errorf("the lookup got %v, want %v", r.args, want)
	}
	if _, err := newProvider(r, map[string]string{"provider": "gce", "tag_value": "50%"}); err == nil || !strings.Contains(err.Error(), "URL-encoded") {
		t.Errorf("bad escape: err = %v", err)
	}
}

// The daemon sends exactly these providers to the helper: a provider
// added here and not there would be unknown to the daemon.
func TestHelperKnowsEveryProvider(t *testing.T) {
	for name := range providers {
		if !slices.Contains(helper.Names, name) {
			t.Errorf("provider %q is built into the helper but not in helper.Names", name)
		}
	}
}
