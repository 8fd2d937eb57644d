package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// writePrettyAll prints each object for humans (`inspect --pretty`), a
// blank line between two; objects that cannot be fetched are reported
// together at the end, after the others are printed, as docker does.
func writePrettyAll(out io.Writer, refs []string, fetch inspectFetch, write func(io.Writer, any)) error {
	var errs []string
	printed := 0
	for _, ref := range refs {
		typed, _, err := fetch(ref)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if printed > 0 {
			fmt.Fprintln(out)
		}
		write(out, typed)
		printed++
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// prettyFields returns the two printers of `--pretty` output: field
// prints "label:" padded to a common column, then the value; section
// prints a heading on its own.
func prettyFields(out io.Writer) (field func(label string, v any), section func(label string)) {
	field = func(label string, v any) {
		if s := fmt.Sprint(v); s != "" {
			fmt.Fprintf(out, "%-22s%s\n", label+":", s)
		} else {
			fmt.Fprintln(out, label+":")
		}
	}
	section = func(label string) { fmt.Fprintln(out, label+":") }
	return field, section
}
