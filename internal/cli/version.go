package cli

import (
	"fmt"
	"io"
	"runtime"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func newVersionCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the flotilla version information",
		Args:  noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		api, err := env.client()
		if err != nil {
			writeClientVersion(out, client.MaxAPIVersion)
			return err
		}
		sv, err := api.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
		writeClientVersion(out, api.ClientVersion())
		if err != nil {
			return err
		}
		fmt.Fprintln(out)
		writeServerVersion(out, sv)
		return nil
	})
	return cmd
}

type versionLines struct {
	out io.Writer
}

func (v versionLines) line(indent int, label string, value any) {
	label = fmt.Sprintf("%*s%s:", indent, "", label)
	fmt.Fprintf(v.out, "%-20s%v\n", label, value)
}

func writeClientVersion(out io.Writer, apiVersion string) {
	v := versionLines{out}
	fmt.Fprintln(out, "Client:")
	v.line(1, "Version", Version)
	api := apiVersion
	if apiVersion != client.MaxAPIVersion {
		api = fmt.Sprintf("%s (downgraded from %s)", apiVersion, client.MaxAPIVersion)
	}
	v.line(1, "API version", api)
	v.line(1, "Go version", runtime.Version())
	v.line(1, "OS/Arch", runtime.GOOS+"/"+runtime.GOARCH)
}

func writeServerVersion(out io.Writer, sv client.ServerVersionResult) {
	v := versionLines{out}
	if sv.Platform.Name != "" {
		fmt.Fprintln(out, "Server:", sv.Platform.Name)
	} else {
		fmt.Fprintln(out, "Server:")
	}
	v.line(1, "Version", sv.Version)
	api := sv.APIVersion
	if sv.MinAPIVersion != "" {
		api += " (minimum version " + sv.MinAPIVersion + ")"
	}
	v.line(1, "API version", api)
	v.line(1, "OS/Arch", sv.Os+"/"+sv.Arch)
	for _, c := range sv.Components {
		fmt.Fprintf(out, " %s:\n", c.Name)
		v.line(2, "Version", c.Version)
		for _, k := range sortedKeys(c.Details) {
			v.line(2, k, c.Details[k])
		}
	}
}
