// Package helper reaches go-discover's cloud providers (aws, azure, gce
// tags, ...) through a helper program, flotilla-discover, run for each
// lookup: their SDKs are large, and every package linked into flotilla
// runs its initialisation in every flotilla process (each daemon, CLI
// call and process task's shim), which cost the daemon 10 MB of resident
// memory while no lookup ran. The helper links them
// (internal/discovery/cloud); this package only knows their names.
package helper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flotilla-org/flotilla/internal/discovery"
)

// Binary is the helper's name, looked for next to the running flotilla
// executable, then on PATH; EnvPath overrides both.
const (
	Binary  = "flotilla-discover"
	EnvPath = "FLOTILLA_DISCOVER"
)

// Names are the providers the helper serves (go-discover's, vSphere only
// in a helper built with -tags vsphere).
var Names = []string{"aliyun", "aws", "azure", "digitalocean", "gce", "linode", "mdns", "os", "packet",
	"scaleway", "softlayer", "tencentcloud", "triton", "vsphere"}

// Register makes "provider=NAME ..." specs go through the helper, for
// each name no provider in this process serves already.
func Register() {
	have := discovery.Names()
	for _, name := range Names {
		if i := sort.SearchStrings(have, name); i < len(have) && have[i] == name {
			continue
		}
		discovery.Register(name, newProvider)
	}
}

// provider runs the helper with the spec and reads one address per line.
type provider struct{ spec string }

func newProvider(args map[string]string) (discovery.Provider, error) {
	// A spec the helper would refuse is refused here, when it is given.
	if _, _, err := discovery.GoDiscoverArgs(args); err != nil {
		return nil, err
	}
	return &provider{spec: discovery.CanonicalSpec(args)}, nil
}

func (p *provider) String() string { return "go-discover " + p.spec + " (through " + Binary + ")" }

func (p *provider) Managers(ctx context.Context) ([]string, error) {
	bin, err := find()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, p.spec)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", p, ctx.Err())
		}
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s: %s", p, msg)
	}
	var addrs []string
	for _, line := range strings.Fields(out.String()) {
		if _, _, err := net.SplitHostPort(line); err != nil {
			return nil, fmt.Errorf("%s: the helper answered %q, not host:port", p, line)
		}
		addrs = append(addrs, line)
	}
	return addrs, nil
}

// find locates the helper.
func find() (string, error) {
	if p := os.Getenv(EnvPath); p != "" {
		return p, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), Binary)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(Binary); err == nil {
		return p, nil
	}
	return "", errors.New("the cloud providers run in the helper program " + Binary + ", which was not found next to flotilla nor on PATH: build it with `go build -o bin/ ./cmd/...` and install it beside flotilla (or set " + EnvPath + " to its path)")
}
