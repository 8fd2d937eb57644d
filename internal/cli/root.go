package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// NewRootCommand returns the flotilla command tree (without the daemon
// command, which the caller adds). Errors of subcommands are printed to
// stderr, docker style, and returned by Execute; the caller should exit
// with status 1 when Execute returns an error.
func NewRootCommand() *cobra.Command {
	env := &cliEnv{}

	root := &cobra.Command{
		Use:   "flotilla [OPTIONS] COMMAND",
		Short: "A container orchestrator speaking the Docker swarm API",
		Long: "flotilla manages a cluster of nodes with docker's swarm-mode grammar.\n\n" +
			"The CLI talks to a flotilla daemon over the Docker Engine API; point it at one\n" +
			"with -H/--host or " + HostEnvVar + " (default " + DefaultHost + ").",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: false,
		Args:          groupArgs,
		RunE:          showHelp,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true, // see completion.go
		},
	}
	root.SetVersionTemplate("flotilla version {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.PersistentFlags().StringVarP(&env.host, "host", "H", defaultHost(),
		"Daemon socket to connect to: unix:///path or tcp://host:port (env "+HostEnvVar+")")
	addTLSFlags(root.PersistentFlags(), &env.tls)

	root.AddCommand(
		newSwarmCommand(env),
		newStackCommand(env),
		newNodeCommand(env),
		newServiceCommand(env),
		newNetworkCommand(env),
		newSecretCommand(env),
		newConfigCommand(env),
		newInfoCommand(env),
		newEventsCommand(env),
		newVersionCommand(env),
		newCompletionCommand(),
		newSandboxCommand(env),
		newSampleWebCommand(),
	)
	// Use lines spell out [OPTIONS] themselves, docker style.
	var noFlagsInUse func(*cobra.Command)
	noFlagsInUse = func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		for _, sub := range c.Commands() {
			noFlagsInUse(sub)
		}
	}
	noFlagsInUse(root)
	return root
}

// showHelp is the RunE of command groups run without a subcommand.
func showHelp(cmd *cobra.Command, _ []string) error {
	cmd.SetOut(cmd.ErrOrStderr())
	return cmd.Help()
}

// fail prints msg for the user and returns an error that cobra will not
// print again.
func fail(cmd *cobra.Command, msg string) error {
	fmt.Fprintln(cmd.ErrOrStderr(), msg)
	cmd.SilenceErrors = true
	return &cmdError{msg: msg}
}

func flagError(cmd *cobra.Command, err error) error {
	return fail(cmd, fmt.Sprintf("%s\nSee '%s --help'.", err, cmd.CommandPath()))
}

func usageHint(cmd *cobra.Command) string {
	return fmt.Sprintf("See '%s --help'.\n\nUsage:  %s\n\n%s", cmd.CommandPath(), cmd.UseLine(), cmd.Short)
}

// groupArgs rejects arguments to a command group: they are unknown
// subcommands.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return fail(cmd, fmt.Sprintf("unknown command %q for %q\nSee '%s --help'.", args[0], cmd.CommandPath(), cmd.CommandPath()))
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return fail(cmd, fmt.Sprintf("%q accepts no arguments.\n%s", cmd.CommandPath(), usageHint(cmd)))
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return fail(cmd, fmt.Sprintf("%q requires exactly %d %s.\n%s", cmd.CommandPath(), n, plural(n, "argument"), usageHint(cmd)))
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return fail(cmd, fmt.Sprintf("%q requires at least %d %s.\n%s", cmd.CommandPath(), n, plural(n, "argument"), usageHint(cmd)))
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// rootName is the program name used in printed hints ("flotilla").
func rootName(cmd *cobra.Command) string {
	name := cmd.Root().Name()
	if name == "" {
		return "flotilla"
	}
	return strings.TrimSpace(name)
}
