package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newSwarmUnlockCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Unlock swarm",
		Long: "Unlock a manager that restarted while autolock was on.\n\n" +
			"The key is asked for on the terminal (without echo), or read from stdin\n" +
			"when stdin is not a terminal.",
		Args: noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		// As docker: ask for the key only if there is something to unlock.
		ir, err := api.Info(ctx, client.InfoOptions{})
		if err != nil {
			return err
		}
		switch ir.Info.Swarm.LocalNodeState {
		case swarm.LocalNodeStateInactive:
			return errors.New("Error: This node is not part of a swarm")
		case swarm.LocalNodeStateLocked:
		default:
			return errors.New("Error: swarm is not locked")
		}
		key, err := readUnlockKey(cmd.InOrStdin(), cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		_, err = api.SwarmUnlock(ctx, client.SwarmUnlockOptions{Key: key})
		return err
	})
	return cmd
}

// readUnlockKey asks for the key without echo on a terminal, or reads one
// line of in otherwise (a pipe or a file).
func readUnlockKey(in io.Reader, prompt io.Writer) (string, error) {
	var line string
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(prompt, "Enter unlock key: ")
		b, err := readNoEcho(f)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the unlock key: %w", err)
		}
		line = string(b)
	} else {
		s, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the unlock key from stdin: %w", err)
		}
		line = s
	}
	key := strings.TrimSpace(line)
	if key == "" {
		return "", errors.New("no unlock key given: type it, or pipe it on stdin")
	}
	return key, nil
}
