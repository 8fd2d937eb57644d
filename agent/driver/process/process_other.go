//go:build !unix

package process

import (
	"errors"

	"github.com/spf13/cobra"
)

var errUnsupported = errors.New("the process driver needs a Unix system")

// Driver is not available on this system.
type Driver struct{}

// New fails: the process driver needs a Unix system.
func New(Options) (*Driver, error) { return nil, errUnsupported }

// ShimCommand returns a hidden command that fails on this system.
func ShimCommand() *cobra.Command {
	return &cobra.Command{Use: ShimCommandName, Hidden: true,
		RunE: func(*cobra.Command, []string) error { return errUnsupported }}
}

// MaybeRunShim does nothing on this system.
func MaybeRunShim() {}
