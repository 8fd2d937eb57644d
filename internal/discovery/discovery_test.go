package discovery

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for spec, want := range map[string]string{
		"10.0.0.1:2377, 10.0.0.2": "static 10.0.0.1:2377,10.0.0.2:2377",
		"[::1]":                   "static [::1]:2377",
		"dns:managers.example":    "dns managers.example:2377",
		"dns:m.example:4000":      "dns m.example:4000",
		"dns+srv:_f._tcp.example": "dns srv _f._tcp.example",
		"file:/etc/flotilla/m":    "file /etc/flotilla/m",
	} {
		p, err := Parse(spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", spec, err)
			continue
		}
		if p.String() != want {
			t.Errorf("Parse(%q) = %q, want %q", spec, p.String(), want)
		}
	}
	for spec, want := range map[string]string{
		"":                      "empty discovery spec",
		" , ":                   "names no address",
		"dns:":                  "want dns:NAME",
		"dns:m.example:port":    "not a number",
		"dns+srv:a b":           "want dns+srv:",
		"file:":                 "needs a path",
		"provider=nope x=1":     `no provider "nope"`,
		"provider=nope garbage": "is not key=value",
	} {
		if _, err := Parse(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error = %v, want one containing %q", spec, err, want)
		}
	}
}

type fixed []string

func (f fixed) Managers(context.Context) ([]string, error) { return f, nil }
func (f fixed) String() string                             { return "fixed" }

func TestRegister(t *testing.T) {
	var got map[string]string
	Register("test-fixed", func(args map[string]string) (Provider, error) {
		got = args
		return fixed{"127.0.0.9:2377"}, nil
	})
	p, err := Parse("provider=test-fixed zone=a tag_value=mgr")
	if err != nil {
		t.Fatal(err)
	}
	if got["zone"] != "a" || got["tag_value"] != "mgr" || got["provider"] != "test-fixed" {
		t.Errorf("factory got %v", got)
	}
	if m, _ := p.Managers(context.Background()); !slices.Equal(m, []string{"127.0.0.9:2377"}) {
		t.Errorf("Managers() = %v", m)
	}
	if !slices.Contains(Names(), "test-fixed") {
		t.Errorf("Names() = %v", Names())
	}
}

func TestFileIsReadOnEveryCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "managers")
	p, err := Parse("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Managers(context.Background()); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("missing file: err = %v, want one naming it", err)
	}
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("# managers of the swarm\n127.0.0.1:4001\n\n127.0.0.2  # second\n")
	got, err := p.Managers(context.Background())
	if err != nil || !slices.Equal(got, []string{"127.0.0.1:4001", "127.0.0.2:2377"}) {
		t.Errorf("first read = %v, %v", got, err)
	}
	write("127.0.0.3:4003\n")
	got, err = p.Managers(context.Background())
	if err != nil || !slices.Equal(got, []string{"127.0.0.3:4003"}) {
		t.Errorf("after rewrite = %v, %v", got, err)
	}
	write("127.0.0.1:4001\n127.0.0.1:notaport\n")
	if _, err := p.Managers(context.Background()); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: err = %v, want one naming line 2", err)
	}
}
