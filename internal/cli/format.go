package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode"
	"unicode/utf8"
)

// Names of the special --format values, as docker has them.
const (
	formatTable  = "table"
	formatJSON   = "json"
	formatRaw    = "raw"
	formatPretty = "pretty"

	quietTemplate = "{{.ID}}"
	jsonTemplate  = "{{json .}}"
)

// templateFuncs are available in every --format template (docker's set).
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    titleCase,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      padSpaces,
	"truncate": truncate,
}

// headerFuncs replace templateFuncs when a table's header row is rendered,
// so that the column titles come out unchanged.
var headerFuncs = func() template.FuncMap {
	m := maps.Clone(templateFuncs)
	identity := func(v string) string { return v }
	m["json"] = identity
	m["title"] = identity
	m["lower"] = identity
	m["upper"] = identity
	m["split"] = func(v, _ string) string { return v }
	m["join"] = func(v, _ string) string { return v }
	m["truncate"] = func(v string, _ int) string { return v }
	return m
}()

func titleCase(s string) string {
	prev := ' '
	var b strings.Builder
	for _, r := range s {
		if unicode.IsSpace(prev) || prev == '-' || prev == '_' {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

func padSpaces(s string, prefix, suffix int) string {
	if s == "" {
		return s
	}
	return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
}

func truncate(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// capitalize upper-cases the first letter: "ready" -> "Ready".
func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

func parseTemplate(text string, funcs template.FuncMap) (*template.Template, error) {
	t, err := template.New("").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %v", err)
	}
	return t, nil
}

// listFormat is a resolved --format value for a list command.
type listFormat struct {
	table bool   // render as a table with a header row
	text  string // the template for one row
}

// resolveListFormat maps --format (and -q) to a row template the way
// docker's list commands do: "" and "table" give the default table (or just
// IDs with -q), "json" gives one JSON object per line, "raw" the raw
// format, "table <tmpl>" a table of a custom template, anything else a plain
// per-row template.
func resolveListFormat(format string, quiet bool, defaultTable, raw, rawQuiet string) listFormat {
	switch format {
	case "", formatTable:
		if quiet {
			return listFormat{text: quietTemplate}
		}
		format = defaultTable
	case formatJSON:
		return listFormat{text: jsonTemplate}
	case formatRaw:
		format = raw
		if quiet {
			format = rawQuiet
		}
	}
	lf := listFormat{text: format}
	if strings.HasPrefix(format, formatTable) {
		lf.table = true
		lf.text = format[len(formatTable):]
	}
	lf.text = strings.Trim(lf.text, " ")
	lf.text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(lf.text)
	return lf
}

// writeList renders rows with lf. For tables, header (a map of field name to
// column title) is rendered with the same template to form the first line,
// and columns are aligned with docker's tabwriter settings.
func writeList[T any](w io.Writer, lf listFormat, header map[string]string, rows []T) error {
	tmpl, err := parseTemplate(lf.text, templateFuncs)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	for _, row := range rows {
		if err := tmpl.Execute(&body, row); err != nil {
			return fmt.Errorf("template parsing error: %v", err)
		}
		body.WriteByte('\n')
	}
	if !lf.table {
		_, err := body.WriteTo(w)
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	if htmpl, err := parseTemplate(lf.text, headerFuncs); err == nil {
		var head bytes.Buffer
		if err := htmpl.Execute(&head, header); err == nil {
			_, _ = head.WriteTo(tw)
		}
	}
	_, _ = tw.Write([]byte{'\n'})
	_, _ = body.WriteTo(tw)
	return tw.Flush()
}

// inspectFetch fetches one object for an inspect command: the decoded value
// (for templates) and the raw JSON the daemon sent (for the default output).
type inspectFetch func(ref string) (typed any, raw []byte, err error)

// writeInspect implements docker's inspect output: with no format an
// indented JSON array of the daemon's objects, with "json" a compact one,
// otherwise the template executed once per object. Objects that cannot be
// fetched are skipped and their errors returned together, after the rest
// has been written.
func writeInspect(w io.Writer, format string, refs []string, fetch inspectFetch) error {
	var tmpl *template.Template
	if format != "" && format != formatJSON {
		var err error
		if tmpl, err = parseTemplate(format, templateFuncs); err != nil {
			return err
		}
	}
	var (
		errs []string
		raws [][]byte
		out  bytes.Buffer
	)
	for _, ref := range refs {
		typed, raw, err := fetch(ref)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if tmpl == nil {
			raws = append(raws, raw)
			continue
		}
		if err := executeInspectTemplate(&out, tmpl, typed, raw); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if tmpl == nil {
		if len(raws) == 0 {
			out.WriteString("[]")
		} else {
			arr := append([]byte{'['}, bytes.Join(raws, []byte{','})...)
			arr = append(arr, ']')
			var err error
			if format == formatJSON {
				err = json.Compact(&out, arr)
			} else {
				err = json.Indent(&out, arr, "", "    ")
			}
			if err != nil {
				return err
			}
		}
		out.WriteByte('\n')
	} else if out.Len() == 0 {
		out.WriteByte('\n')
	}
	if _, err := out.WriteTo(w); err != nil {
		return err
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// executeInspectTemplate runs tmpl on the typed object, falling back to the
// raw JSON decoded into maps (so fields the wire type lacks still work).
func executeInspectTemplate(w *bytes.Buffer, tmpl *template.Template, typed any, raw []byte) error {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, typed); err != nil {
		if raw == nil {
			return fmt.Errorf("template parsing error: %v", err)
		}
		var generic any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if derr := dec.Decode(&generic); derr != nil {
			return fmt.Errorf("unable to read inspect data: %v", derr)
		}
		buf.Reset()
		if rerr := tmpl.Option("missingkey=error").Execute(&buf, generic); rerr != nil {
			return fmt.Errorf("template parsing error: %v", rerr)
		}
	}
	w.Write(buf.Bytes())
	w.WriteByte('\n')
	return nil
}

// naturalLess orders strings the way people count: "node-2" < "node-10".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		ca, cb := a[0], b[0]
		if isDigit(ca) && isDigit(cb) {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) < len(tb)
			}
			if ta != tb {
				return ta < tb
			}
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			a, b = ra, rb
			continue
		}
		if ca != cb {
			return ca < cb
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}
