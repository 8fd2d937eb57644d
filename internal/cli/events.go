package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// eventTimeLayout is RFC 3339 with the nanoseconds always nine digits,
// as docker prints event times.
const eventTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

type eventsOpts struct {
	since, until, format string
	filters              []string
}

func newEventsCommand(env *cliEnv) *cobra.Command {
	var o eventsOpts
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the swarm",
		Long: "Print the swarm's events (services, nodes, networks, secrets, configs) as they happen.\n" +
			"With --since, start from the retained window (the last 10,000 events, kept by every manager);\n" +
			"with --until, stop at that time. Times are Unix timestamps, RFC 3339 dates or durations (10m).",
		Args: noArgs,
	}
	cmd.RunE = env.runE(func(cmd *cobra.Command, _ []string) error {
		f, err := parseFilters(o.filters)
		if err != nil {
			return err
		}
		tmpl, err := eventTemplate(o.format)
		if err != nil {
			return err
		}
		api, err := env.client()
		if err != nil {
			return err
		}
		res := api.Events(cmd.Context(), client.EventsListOptions{Since: o.since, Until: o.until, Filters: f})
		out := cmd.OutOrStdout()
		var last int64
		for {
			select {
			case ev := <-res.Messages:
				if err := printEvent(out, ev, tmpl); err != nil {
					return err
				}
				last = ev.TimeNano
			case err := <-res.Err:
				if errors.Is(err, io.EOF) || cmd.Context().Err() != nil {
					return nil
				}
				if last != 0 {
					// Every manager holds the same events with the same
					// times: resuming through any of them misses nothing.
					next := last + 1
					return fmt.Errorf("the event stream broke: %v; resume through any manager with --since %d.%09d",
						err, next/1e9, next%1e9)
				}
				return err
			}
		}
	})
	flags := cmd.Flags()
	flags.StringVar(&o.since, "since", "", "Show all events created since timestamp")
	flags.StringVar(&o.until, "until", "", "Stream events until this timestamp")
	flags.StringArrayVarP(&o.filters, "filter", "f", nil,
		"Filter output based on conditions provided (type, event, scope, node, service, network, secret, config, label)")
	flags.StringVar(&o.format, "format", "", "Format output using a custom template:\n"+
		"'json':             Print in JSON format\n"+
		"'TEMPLATE':         Print output using the given Go template\n"+
		"Fields: .Type .Action .Actor.ID .Actor.Attributes .Scope .Time .TimeNano")
	return cmd
}

// eventTemplate parses --format; nil means docker's one-line default.
func eventTemplate(format string) (*template.Template, error) {
	switch format {
	case "":
		return nil, nil
	case formatJSON:
		format = jsonTemplate
	}
	tmpl, err := parseTemplate(format, templateFuncs)
	if err != nil {
		return nil, err
	}
	// Run it once on an empty event so a bad field fails before any event.
	if err := tmpl.Execute(io.Discard, &events.Message{}); err != nil {
		return nil, fmt.Errorf("template parsing error: %v", err)
	}
	return tmpl, nil
}

// printEvent writes one event: through tmpl, or as docker's default
// "TIME TYPE ACTION ID (k=v, ...)" line with the time in local time.
func printEvent(w io.Writer, ev events.Message, tmpl *template.Template) error {
	var b strings.Builder
	if tmpl != nil {
		if err := tmpl.Execute(&b, ev); err != nil {
			return fmt.Errorf("template parsing error: %v", err)
		}
	} else {
		switch {
		case ev.TimeNano != 0:
			b.WriteString(time.Unix(0, ev.TimeNano).Format(eventTimeLayout) + " ")
		case ev.Time != 0:
			b.WriteString(time.Unix(ev.Time, 0).Format(eventTimeLayout) + " ")
		}
		fmt.Fprintf(&b, "%s %s %s", ev.Type, ev.Action, ev.Actor.ID)
		if len(ev.Actor.Attributes) > 0 {
			keys := make([]string, 0, len(ev.Actor.Attributes))
			for k := range ev.Actor.Attributes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for i, k := range keys {
				sep := ", "
				if i == 0 {
					sep = " ("
				}
				b.WriteString(sep + k + "=" + ev.Actor.Attributes[k])
			}
			b.WriteString(")")
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
