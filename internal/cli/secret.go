package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// Secrets and configs have the same commands, as in docker; blobCommands
// says how each kind talks to the API. Their data come from a file or
// stdin ("-"); a secret's data never come back.
type blobCommands struct {
	noun, short  string
	defaultTable string
	header       map[string]string
	hasDriver    bool // secrets: --driver (refused by the managers)
	create       func(ctx context.Context, api apiClient, a swarm.Annotations, data []byte, driver, tmpl *swarm.Driver) (string, error)
	list         func(ctx context.Context, api apiClient, f client.Filters) ([]blobRow, error)
	inspect      func(ctx context.Context, api apiClient, ref string) (any, []byte, error)
	remove       func(ctx context.Context, api apiClient, ref string) error
}

// blobRow is one row of `secret ls` or `config ls`, with docker's fields.
type blobRow struct {
	id, name, driver string
	created, updated time.Time
	labels           map[string]string
}

func (r *blobRow) ID() string     { return r.id }
func (r *blobRow) Name() string   { return r.name }
func (r *blobRow) Driver() string { return r.driver }
func (r *blobRow) CreatedAt() string {
	return units.HumanDuration(time.Since(r.created)) + " ago"
}
func (r *blobRow) UpdatedAt() string {
	return units.HumanDuration(time.Since(r.updated)) + " ago"
}
func (r *blobRow) Labels() string {
	var kv []string
	for _, k := range sortedKeys(r.labels) {
		kv = append(kv, k+"="+r.labels[k])
	}
	return strings.Join(kv, ",")
}

// Label returns the value of one label, as docker's {{.Label "key"}}.
func (r *blobRow) Label(name string) string { return r.labels[name] }

var secretCommands = blobCommands{
	noun: "secret", short: "Manage swarm secrets",
	defaultTable: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
	header:       map[string]string{"ID": "ID", "Name": "NAME", "Driver": "DRIVER", "CreatedAt": "CREATED", "UpdatedAt": "UPDATED", "Labels": "LABELS"},
	hasDriver:    true,
	create: func(ctx context.Context, api apiClient, a swarm.Annotations, data []byte, driver, tmpl *swarm.Driver) (string, error) {
		res, err := api.SecretCreate(ctx, client.SecretCreateOptions{Spec: swarm.SecretSpec{Annotations: a, Data: data, Driver: driver, Templating: tmpl}})
		return res.ID, err
	},
	list: func(ctx context.Context, api apiClient, f client.Filters) ([]blobRow, error) {
		res, err := api.SecretList(ctx, client.SecretListOptions{Filters: f})
		rows := make([]blobRow, len(res.Items))
		for i, s := range res.Items {
			rows[i] = blobRow{id: s.ID, name: s.Spec.Name, created: s.CreatedAt, updated: s.UpdatedAt, labels: s.Spec.Labels}
			if s.Spec.Driver != nil {
				rows[i].driver = s.Spec.Driver.Name
			}
		}
		return rows, err
	},
	inspect: func(ctx context.Context, api apiClient, ref string) (any, []byte, error) {
		res, err := api.SecretInspect(ctx, ref, client.SecretInspectOptions{})
		return res.Secret, res.Raw, err
	},
	remove: func(ctx context.Context, api apiClient, ref string) error {
		_, err := api.SecretRemove(ctx, ref, client.SecretRemoveOptions{})
		return err
	},
}

var configCommands = blobCommands{
	noun: "config", short: "Manage swarm configs",
	defaultTable: "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
	header:       map[string]string{"ID": "ID", "Name": "NAME", "CreatedAt": "CREATED", "UpdatedAt": "UPDATED", "Labels": "LABELS"},
	create: func(ctx context.Context, api apiClient, a swarm.Annotations, data []byte, _, tmpl *swarm.Driver) (string, error) {
		res, err := api.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: swarm.ConfigSpec{Annotations: a, Data: data, Templating: tmpl}})
		return res.ID, err
	},
	list: func(ctx context.Context, api apiClient, f client.Filters) ([]blobRow, error) {
		res, err := api.ConfigList(ctx, client.ConfigListOptions{Filters: f})
		rows := make([]blobRow, len(res.Items))
		for i, c := range res.Items {
			rows[i] = blobRow{id: c.ID, name: c.Spec.Name, created: c.CreatedAt, updated: c.UpdatedAt, labels: c.Spec.Labels}
		}
		return rows, err
	},
	inspect: func(ctx context.Context, api apiClient, ref string) (any, []byte, error) {
		res, err := api.ConfigInspect(ctx, ref, client.ConfigInspectOptions{})
		return res.Config, res.Raw, err
	},
	remove: func(ctx context.Context, api apiClient, ref string) error {
		_, err := api.ConfigRemove(ctx, ref, client.ConfigRemoveOptions{})
		return err
	},
}

func newSecretCommand(env *cliEnv) *cobra.Command { return secretCommands.command(env) }
func newConfigCommand(env *cliEnv) *cobra.Command { return configCommands.command(env) }

func (b blobCommands) command(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{Use: b.noun, Short: b.short, Args: groupArgs, RunE: showHelp}
	cmd.AddCommand(b.createCommand(env), b.lsCommand(env), b.inspectCommand(env), b.rmCommand(env))
	return cmd
}

// maxBlobRead bounds what create reads: beyond it no secret or config
// can be stored anyway (the managers' limits are 500 and 1000 KiB).
const maxBlobRead = 2 << 20

// readBlob reads the data of create from a file or stdin ("-").
func readBlob(stdin io.Reader, file string) ([]byte, error) {
	in := stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, maxBlobRead+1))
	if err != nil {
		return nil, fmt.Errorf("error reading content from %q: %v", file, err)
	}
	if len(data) > maxBlobRead {
		return nil, fmt.Errorf("%s is larger than %d bytes: secrets are limited to 500 KiB and configs to 1000 KiB", file, maxBlobRead)
	}
	return data, nil
}

func (b blobCommands) createCommand(env *cliEnv) *cobra.Command {
	var (
		labels             []string
		driver, tmplDriver string
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] " + strings.ToUpper(b.noun) + " file|-",
		Short: "Create a " + b.noun + " from a file or STDIN as content",
		Args:  exactArgs(2),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		l, err := parseLabels("label", labels)
		if err != nil {
			return err
		}
		data, err := readBlob(cmd.InOrStdin(), args[1])
		if err != nil {
			return err
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		var drv, tmpl *swarm.Driver
		if driver != "" {
			drv = &swarm.Driver{Name: driver}
		}
		if tmplDriver != "" {
			tmpl = &swarm.Driver{Name: tmplDriver}
		}
		id, err := b.create(cmd.Context(), api, swarm.Annotations{Name: args[0], Labels: l}, data, drv, tmpl)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), id)
		return nil
	})
	flags := cmd.Flags()
	flags.StringArrayVarP(&labels, "label", "l", nil, b.noun+" labels")
	flags.StringVar(&tmplDriver, "template-driver", "", "Template driver (not supported by flotilla: refused)")
	if b.hasDriver {
		flags.StringVarP(&driver, "driver", "d", "", "Secret driver (not supported by flotilla: refused)")
	}
	return cmd
}

func (b blobCommands) lsCommand(env *cliEnv) *cobra.Command {
	var (
		quiet   bool
		format  string
		filters []string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List " + b.noun + "s",
		Args:    noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		f, err := parseFilters(filters)
		if err != nil {
			return err
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		rows, err := b.list(cmd.Context(), api, f)
		if err != nil {
			return err
		}
		sort.SliceStable(rows, func(i, j int) bool { return naturalLess(rows[i].name, rows[j].name) })
		ptrs := make([]*blobRow, len(rows))
		for i := range rows {
			ptrs[i] = &rows[i]
		}
		return writeList(cmd.OutOrStdout(), resolveListFormat(format, quiet, b.defaultTable, "id: {{.ID}}\\nname: {{.Name}}\\n", "id: {{.ID}}"), b.header, ptrs)
	})
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	flags.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)\n"+
		"Fields: .ID .Name .CreatedAt .UpdatedAt .Labels .Label")
	flags.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (id, label, name, names)")
	return cmd
}

func (b blobCommands) inspectCommand(env *cliEnv) *cobra.Command {
	var (
		format string
		pretty bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] " + strings.ToUpper(b.noun) + " [" + strings.ToUpper(b.noun) + "...]",
		Short: "Display detailed information on one or more " + b.noun + "s",
		Args:  minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		if pretty {
			for i, ref := range args {
				_, raw, err := b.inspect(cmd.Context(), api, ref)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				if err := writePrettyBlob(cmd.OutOrStdout(), raw); err != nil {
					return err
				}
			}
			return nil
		}
		return writeInspect(cmd.OutOrStdout(), format, args, func(ref string) (any, []byte, error) {
			return b.inspect(cmd.Context(), api, ref)
		})
	})
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom Go template ('json' for compact JSON)")
	cmd.Flags().BoolVar(&pretty, "pretty", false, "Print the information in a human friendly format")
	return cmd
}

// writePrettyBlob prints a secret or config as docker's --pretty does;
// a config's data is shown, a secret has none to show.
func writePrettyBlob(w io.Writer, raw []byte) error {
	var o struct {
		ID                   string
		CreatedAt, UpdatedAt time.Time
		Spec                 struct {
			Name   string
			Labels map[string]string
			Driver *swarm.Driver
			Data   []byte
		}
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return err
	}
	fmt.Fprintf(w, "ID:              %s\nName:              %s\n", o.ID, o.Spec.Name)
	if len(o.Spec.Labels) > 0 {
		fmt.Fprintln(w, "Labels:")
		for _, k := range sortedKeys(o.Spec.Labels) {
			fmt.Fprintf(w, " - %s=%s\n", k, o.Spec.Labels[k])
		}
	}
	if o.Spec.Driver != nil && o.Spec.Driver.Name != "" {
		fmt.Fprintf(w, "Driver:            %s\n", o.Spec.Driver.Name)
	}
	fmt.Fprintf(w, "Created at:        %s\nUpdated at:        %s\n", o.CreatedAt, o.UpdatedAt)
	if o.Spec.Data != nil {
		fmt.Fprintf(w, "Data:\n%s\n", o.Spec.Data)
	}
	return nil
}

func (b blobCommands) rmCommand(env *cliEnv) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rm " + strings.ToUpper(b.noun) + " [" + strings.ToUpper(b.noun) + "...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more " + b.noun + "s",
		Args:    minArgs(1),
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, args []string) error {
		api, err := env.client()
		if err != nil {
			return err
		}
		return removeEach(cmd, args, func(ref string) error { return b.remove(cmd.Context(), api, ref) }, nil)
	})
	return cmd
}
