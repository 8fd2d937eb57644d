// Command flotilla-discover looks up a cluster's managers with one of
// go-discover's cloud providers for flotilla (internal/discovery/helper):
// its argument is the spec, e.g. "provider=aws tag_key=role
// tag_value=flotilla-manager", and it prints one host:port per line.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/flotilla-org/flotilla/internal/discovery"
	_ "github.com/flotilla-org/flotilla/internal/discovery/cloud"
)

// lookupTimeout bounds one lookup; the daemon's own deadline ends it
// sooner by killing the process.
const lookupTimeout = 2 * time.Minute

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	spec := strings.Join(args, " ")
	if !strings.HasPrefix(strings.TrimSpace(spec), "provider=") {
		fmt.Fprintf(stderr, "usage: flotilla-discover provider=NAME [key=value ...] (providers: %s)\n", strings.Join(discovery.Names(), ", "))
		return 2
	}
	p, err := discovery.Parse(spec)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	addrs, err := p.Managers(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, a := range addrs {
		fmt.Fprintln(stdout, a)
	}
	return 0
}
