package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// shapeDiff compares the shapes of two decoded JSON values, not their
// values: the JSON type at every path, null against an empty object or
// array, and fields present in one and not the other. Array elements are
// compared with the first element of the other side (lists of nodes or
// tasks differ in length between two clusters). Paths are like
// "Spec.Labels" or "[].Description.TLSInfo".
func shapeDiff(path string, want, got any) []string {
	kind := func(v any) string {
		switch x := v.(type) {
		case nil:
			return "null"
		case map[string]any:
			if len(x) == 0 {
				return "{}"
			}
			return "object"
		case []any:
			if len(x) == 0 {
				return "[]"
			}
			return "array"
		case string:
			return "string"
		case float64:
			return "number"
		case bool:
			return "bool"
		}
		return fmt.Sprintf("%T", v)
	}
	kw, kg := kind(want), kind(got)
	same := kw == kg || (kw == "{}" && kg == "object") || (kw == "object" && kg == "{}") ||
		(kw == "[]" && kg == "array") || (kw == "array" && kg == "[]")
	if !same {
		return []string{fmt.Sprintf("%s: docker has %s, flotilla has %s", path, kw, kg)}
	}
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			p := strings.TrimPrefix(path+"."+k, ".")
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				out = append(out, fmt.Sprintf("%s: missing in flotilla's answer (docker has %s)", p, kind(wv)))
			case !inW:
				out = append(out, fmt.Sprintf("%s: only in flotilla's answer", p))
			default:
				out = append(out, shapeDiff(p, wv, gv)...)
			}
		}
	case []any:
		g := got.([]any)
		if len(w) > 0 && len(g) > 0 {
			out = append(out, shapeDiff(path+"[]", w[0], g[0])...)
		}
	}
	return out
}

// allowed drops the differences that start with an allow-listed path.
func allowed(diffs []string, allow map[string]string) []string {
	return slices.DeleteFunc(diffs, func(d string) bool {
		for p := range allow {
			if strings.HasPrefix(d, p+":") || strings.HasPrefix(d, p+".") || strings.HasPrefix(d, p+"[]") {
				return true
			}
		}
		return false
	})
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// The comparer itself must see what the conformance run is for.
func TestShapeDiff(t *testing.T) {
	d := func(a, b string) []string { return shapeDiff("", decodeJSON(t, []byte(a)), decodeJSON(t, []byte(b))) }
	if got := d(`{"Spec":{"Labels":{}}}`, `{"Spec":{"Labels":null}}`); len(got) != 1 || !strings.Contains(got[0], "Spec.Labels: docker has {}, flotilla has null") {
		t.Errorf("null vs {}: %v", got)
	}
	if got := d(`{"A":1,"B":"x"}`, `{"A":"1","C":true}`); len(got) != 3 {
		t.Errorf("type change, missing and extra field: %v", got)
	}
	if got := d(`[{"ID":"a","V":{"Index":1}}]`, `[{"ID":"b","V":{"Index":7}},{"ID":"c"}]`); len(got) != 0 {
		t.Errorf("same shapes, other values and lengths: %v", got)
	}
	if got := allowed(d(`{"X":{"Y":1},"Z":1}`, `{"X":{},"Z":"s"}`), map[string]string{"X": "why"}); len(got) != 1 || !strings.HasPrefix(got[0], "Z:") {
		t.Errorf("allow-list: %v", got)
	}
}
