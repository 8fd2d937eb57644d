package cli

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func TestProgressDisplayOnATerminalRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	d := &progressDisplay{w: &out, tty: true, lines: map[string]*progressLine{}}
	d.set("overall progress", "0 out of 2 tasks", "")
	d.set("1/2", "preparing", "preparing "+progressBar(6, 9))
	d.set("2/2", "", "")
	d.flush()
	d.flush() // nothing changed: nothing drawn
	d.set("overall progress", "1 out of 2 tasks", "")
	d.set("1/2", "running", "running   "+progressBar(9, 9))
	d.flush()
	d.width = 30 // a long line is cut to fit
	d.set("2/2", "task: non-zero exit (1): out of memory", "")
	d.flush()

	want := "" +
		"\r\x1b[2Koverall progress: 0 out of 2 tasks\n" +
		"\r\x1b[2K1/2: preparing [=================================>                 ]\n" +
		"\r\x1b[2K2/2: \n" +
		"\x1b[3A" +
		"\r\x1b[2Koverall progress: 1 out of 2 tasks\n" +
		"\r\x1b[2K1/2: running   [==================================================>]\n" +
		"\r\x1b[2K2/2: \n" +
		"\x1b[3A" +
		"\r\x1b[2Koverall progress: 1 out of 2…\n" +
		"\r\x1b[2K1/2: running   [============…\n" +
		"\r\x1b[2K2/2: task: non-zero exit (1)…\n"
	if got := out.String(); got != want {
		t.Errorf("terminal output:\n%q\nwant:\n%q", got, want)
	}
}

func TestProgressDisplayPlainPrintsChanges(t *testing.T) {
	var out bytes.Buffer
	d := newProgressDisplay(&out)
	if d.tty {
		t.Fatal("a buffer is not a terminal")
	}
	d.set("overall progress", "0 out of 1 tasks", "")
	d.set("1/1", "", "")
	d.flush()
	d.set("1/1", "pending", "pending   [bar]")
	d.setTTY("overall progress", "only on terminals")
	d.flush()
	d.set("1/1", "pending", "pending   [longer bar]")
	d.flush()
	want := "overall progress: 0 out of 1 tasks\n1/1: pending\n"
	if out.String() != want {
		t.Errorf("plain output %q, want %q", out.String(), want)
	}
}

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc ", []string{"a", "b", "c"}},
		{`a 'b c' "d e"`, []string{"a", "b c", "d e"}},
		{`'it''s' "say \"hi\"" back\ slash`, []string{"its", `say "hi"`, "back slash"}},
		{`"a\nb" ''`, []string{`a\nb`, ""}},
	} {
		got, err := splitArgs(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`"open`, `'open`, `trailing\`} {
		if _, err := splitArgs(bad); err == nil {
			t.Errorf("splitArgs(%q) succeeded", bad)
		}
	}
}

func TestDisplayImage(t *testing.T) {
	for in, want := range map[string]string{
		"nginx:1.27@sha256:abc":                "nginx:1.27",
		"nginx@sha256:abc":                     "nginx@sha256:abc",
		"registry:5000/team/app@sha256:abc":    "registry:5000/team/app@sha256:abc",
		"registry:5000/team/app:v2@sha256:abc": "registry:5000/team/app:v2",
		"/usr/bin/worker":                      "/usr/bin/worker",
	} {
		if got := displayImage(in); got != want {
			t.Errorf("displayImage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDemuxLogsHandlesPlainStreams(t *testing.T) {
	var lines []string
	err := demuxLogs(strings.NewReader("not multiplexed\nsecond"), func(stream byte, b []byte) error {
		lines = append(lines, string(b))
		return nil
	})
	if err != nil || !slices.Equal(lines, []string{"not multiplexed\n", "second\n"}) {
		t.Errorf("lines %q, err %v", lines, err)
	}
}

func TestEllipsis(t *testing.T) {
	if got := ellipsis("héllo wörld", 6); got != "héllo…" {
		t.Errorf("ellipsis = %q", got)
	}
	if got := ellipsis("short", 30); got != "short" {
		t.Errorf("ellipsis = %q", got)
	}
}
