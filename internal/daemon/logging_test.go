package daemon

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --log-format picks the handler: json writes one object a line with the
// component and node a subsystem's logger carries, text writes key=value.
func TestNewLoggerFormats(t *testing.T) {
	var buf bytes.Buffer
	root, err := newLogger(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	withComponent(root.With("node", "n1"), "raft").Info("election won", "term", 3)
	root.Debug("hidden below info")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("json format wrote %q: %v", buf.String(), err)
	}
	for k, want := range map[string]any{"level": "INFO", "msg": "election won", "node": "n1", "component": "raft", "term": 3.0} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v (line %s)", k, line[k], want, buf.String())
		}
	}
	if _, ok := line["time"]; !ok {
		t.Errorf("no time in %s", buf.String())
	}

	buf.Reset()
	root, err = newLogger(&buf, "text", "debug")
	if err != nil {
		t.Fatal(err)
	}
	withComponent(root, "agent").Debug("heartbeat failed")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, `msg="heartbeat failed" component=agent`) {
		t.Errorf("text format wrote %q", got)
	}
}

func TestNewLoggerRefusesBadValues(t *testing.T) {
	for _, c := range []struct{ format, level, want string }{
		{"yaml", "info", `--log-format "yaml": use text or json`},
		{"JSON", "info", `--log-format "JSON": use text or json`},
		{"json", "loud", `--log-level "loud": use debug, info, warn or error`},
	} {
		_, err := newLogger(&bytes.Buffer{}, c.format, c.level)
		if err == nil || err.Error() != c.want {
			t.Errorf("newLogger(%q, %q): err = %v, want %q", c.format, c.level, err, c.want)
		}
	}
}

// A bad --log-format is refused before anything is created.
func TestDaemonRefusesBadLogFormat(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cmd := NewCommand()
	cmd.SetArgs([]string{"--data-dir", dir, "-H", "unix://" + filepath.Join(t.TempDir(), "api.sock"), "--log-format", "yaml"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "use text or json") {
		t.Errorf("--log-format yaml: err = %v, want a refusal naming the accepted values", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("--log-format yaml: the data dir was created (%v)", err)
	}
}
