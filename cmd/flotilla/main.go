// Command flotilla is a container orchestrator in the spirit of Docker
// swarm mode: `flotilla daemon` runs a node (handing itself over to
// flotillad where it sits alongside); every other verb is a client.
package main

import (
	"fmt"
	"os"

	"github.com/flotilla-org/flotilla/agent/driver/process"
	"github.com/flotilla-org/flotilla/internal/bench"
	"github.com/flotilla-org/flotilla/internal/cli"
	"github.com/flotilla-org/flotilla/internal/daemon"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "daemon" {
		if err := daemon.Delegate(os.Args[1:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	root := cli.NewRootCommand()
	root.AddCommand(daemon.NewCommand(), bench.NewCommand(), process.ShimCommand())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
