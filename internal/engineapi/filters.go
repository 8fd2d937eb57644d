package engineapi

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/flotilla-org/flotilla/internal/errdefs"
)

// filterArgs is a parsed "filters" query parameter: key → set of values.
type filterArgs map[string]map[string]bool

// parseFilters parses the "filters" query parameter as the docker CLI sends
// it, {"key":{"value":true}}, or in the legacy list form {"key":["value"]}.
// As in dockerd, the booleans of the map form are ignored: a listed value
// is a value.
func parseFilters(raw string) (filterArgs, error) {
	args := filterArgs{}
	if raw == "" {
		return args, nil
	}
	var fields map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &fields); err == nil {
		for k, set := range fields {
			args[k] = set
			if args[k] == nil {
				args[k] = map[string]bool{}
			}
		}
		return args, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(raw), &legacy); err != nil {
		return nil, errdefs.Invalid(`invalid filter: filters must be a JSON object such as {"role":{"manager":true}}`)
	}
	for k, list := range legacy {
		set := make(map[string]bool, len(list))
		for _, v := range list {
			set[v] = true
		}
		args[k] = set
	}
	return args, nil
}

// validate rejects keys not in accepted, with dockerd's message.
func (f filterArgs) validate(accepted ...string) error {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report the same key every time
	for _, k := range keys {
		if !slices.Contains(accepted, k) {
			return errdefs.Invalid("invalid filter '%s'", k)
		}
	}
	return nil
}

// get returns the values of key, sorted.
func (f filterArgs) get(key string) []string {
	vals := make([]string, 0, len(f[key]))
	for v := range f[key] {
		vals = append(vals, v)
	}
	sort.Strings(vals)
	return vals
}

// matchAnyPrefix reports whether s starts with one of prefixes, or whether
// there are no prefixes to match.
func matchAnyPrefix(s string, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// matchLabels reports whether labels satisfies every one of filters, each
// "key" (the label is set, to any value) or "key=value" (the label has this
// value). As in swarmkit, "key=" is the same as "key".
func matchLabels(labels map[string]string, filters []string) bool {
	for _, f := range filters {
		k, want, _ := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || (want != "" && got != want) {
			return false
		}
	}
	return true
}
