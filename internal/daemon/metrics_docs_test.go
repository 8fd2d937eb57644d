package daemon

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the module root, from this package's directory.
const repoRoot = "../.."

var metricName = regexp.MustCompile(`flotilla_[a-z_]+[a-z]`)

// definedMetrics are the flotilla_ metric names the code defines (quoted
// names in non-test Go files).
func definedMetrics(t *testing.T) []string {
	t.Helper()
	quoted := regexp.MustCompile(`"(flotilla_[a-z_]+)"`)
	var names []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range quoted.FindAllSubmatch(b, -1) {
			names = append(names, string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// used lists the metric names in text, without a histogram's series
// suffixes.
func used(text string) []string {
	var out []string
	for _, n := range metricName.FindAllString(text, -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if s, ok := strings.CutSuffix(n, suffix); ok && strings.HasSuffix(s, "_seconds") {
				n = s
			}
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// The metrics table in docs/operations.md lists exactly the metrics the
// code defines, and the alert rules and the Grafana dashboard use only
// those.
func TestMetricsDocumented(t *testing.T) {
	defined := definedMetrics(t)
	if len(defined) < 20 {
		t.Fatalf("found only %d metric names in the code: %v", len(defined), defined)
	}
	ops := readDoc(t, "operations.md")
	start := strings.Index(ops, "\n## Metrics\n")
	if start < 0 {
		t.Fatal("docs/operations.md has no Metrics section")
	}
	section := ops[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var table []string
	for _, line := range strings.Split(section, "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 2 && strings.HasPrefix(strings.TrimSpace(cells[1]), "`flotilla_") {
			table = append(table, metricName.FindAllString(cells[1], -1)...)
		}
	}
	slices.Sort(table)
	if !slices.Equal(table, defined) {
		t.Errorf("the metrics table in docs/operations.md lists\n%v\nthe code defines\n%v", table, defined)
	}

	rules := readDoc(t, "prometheus-alerts.yml")
	yamlStart := strings.Index(section, "```yaml\n")
	if yamlStart < 0 {
		t.Fatal("no alert rules (```yaml) in the Metrics section")
	}
	inDoc := section[yamlStart+len("```yaml\n"):]
	inDoc = inDoc[:strings.Index(inDoc, "```")]
	if !strings.HasSuffix(rules, inDoc) {
		t.Errorf("docs/prometheus-alerts.yml and the rules in docs/operations.md differ")
	}

	dash := readDoc(t, "grafana-dashboard.json")
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(dash), &d); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for file, text := range map[string]string{"prometheus-alerts.yml": rules, "grafana-dashboard.json": strings.Join(exprs, "\n")} {
		names := used(text)
		if len(names) == 0 {
			t.Errorf("docs/%s uses no flotilla metric", file)
		}
		for _, n := range names {
			if !slices.Contains(defined, n) {
				t.Errorf("docs/%s uses %s, which no code defines", file, n)
			}
		}
	}
}
