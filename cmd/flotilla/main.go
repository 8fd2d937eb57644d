// Command flotilla is a container orchestrator in the spirit of Docker
// swarm mode: `flotilla daemon` runs a node; every other verb is a client.
package main

import (
	"os"

	"github.com/flotilla-org/flotilla/agent/driver/process"
	"github.com/flotilla-org/flotilla/internal/bench"
	"github.com/flotilla-org/flotilla/internal/cli"
	"github.com/flotilla-org/flotilla/internal/daemon"
)

func main() {
	root := cli.NewRootCommand()
	root.AddCommand(daemon.NewCommand(), bench.NewCommand(), process.ShimCommand())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
