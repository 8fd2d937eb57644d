// Command flotillad is the flotilla daemon alone: `flotilla daemon`
// hands itself over to it when it sits next to flotilla
// (internal/daemon/delegate.go). It leaves out the client's packages
// (compose files, their JSON schema, the CLI), which every process that
// links them initialises: the daemon and each process task's shim
// (flotillad process-shim) stay 5 MiB smaller.
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/flotilla-org/flotilla/agent/driver/process"
	"github.com/flotilla-org/flotilla/internal/daemon"
)

func main() {
	root := &cobra.Command{
		Use:          "flotillad",
		Short:        "The flotilla daemon (usually started as `flotilla daemon`)",
		SilenceUsage: true,
	}
	root.AddCommand(daemon.NewCommand(), process.ShimCommand())
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
}
