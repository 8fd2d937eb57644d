package cli

import (
	"errors"
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// removeEach removes every ref, printing each one removed, as docker's rm
// commands do: it goes on after a refusal and reports them all at the end,
// but stops at once when the daemon cannot be reached. ignore, when set,
// drops errors that are not failures (docker's --force on a missing one).
func removeEach(cmd *cobra.Command, refs []string, remove func(ref string) error, ignore func(error) bool) error {
	var errs []error
	for _, ref := range refs {
		if err := remove(ref); err != nil {
			if client.IsErrConnectionFailed(err) {
				return err
			}
			if ignore == nil || !ignore(err) {
				errs = append(errs, err)
			}
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), ref)
	}
	return errors.Join(errs...)
}
