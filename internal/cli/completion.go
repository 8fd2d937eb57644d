package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompletionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Generate the shell completion script",
		Long: `Generate the completion script for a shell.

  bash:  source <(flotilla completion bash)
         (or save it to /etc/bash_completion.d/flotilla; needs bash-completion v2)
  zsh:   flotilla completion zsh > "${fpath[1]}/_flotilla"
  fish:  flotilla completion fish > ~/.config/fish/completions/flotilla.fish`,
		ValidArgs:             []string{"bash", "zsh", "fish"},
		Args:                  exactArgs(1),
		DisableFlagsInUseLine: true,
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		out, root := cmd.OutOrStdout(), cmd.Root()
		switch args[0] {
		case "bash":
			return root.GenBashCompletionV2(out, true)
		case "zsh":
			return root.GenZshCompletion(out)
		case "fish":
			return root.GenFishCompletion(out, true)
		}
		return fail(cmd, fmt.Sprintf("unsupported shell %q: use bash, zsh or fish", args[0]))
	}
	return cmd
}
